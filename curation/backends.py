"""The backends of curation's per-item stages, by the name params give them.

Each registry maps a backend name to a `core.backends.Backend`: the function that loads its
models once per worker (None when it needs none) and whether they want a GPU. A stage builds
its `ItemWork` from the entry (`item_work`), so no stage compares backend names; its item
function gets the loaded models, or None for a backend that runs without any.

A pretrained backend's models have the interface its item function calls:
- captions: `caption(frames) -> str` and `name` (curation.pretrained.captioner.VlmCaptioner);
- entities: `fine_label(frames, label) -> str`, attributes: `describe_attributes(frames)`;
- subjects: a (grounder, verifier, masker) triple; faces: `detect(frame)` and `name`;
- timelines: a (proposer, alignment scorer) pair; clip_signatures: a frame embedder;
- clip_quality aesthetics: `score_clip(frames, n)` and `name`.

Frame embedders (curation.features.FRAME_EMBEDDERS) and shot detectors
(curation.shot_detectors.SHOT_DETECTORS) have their registries beside their code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.backends import Backend, BackendRegistry
from core.execution import ItemEnv, ItemWork, model_device

# ---------------------------------------------------------------- loaders (module level: Ray pickles them by reference)


def load_vlm(env: ItemEnv, model: str, **kwargs: Any):
    """Qwen2.5-VL behind the captioner interface, once per worker, on the worker's device."""
    from curation.pretrained.captioner import VlmCaptioner

    return VlmCaptioner(model, device=model_device(env.params), **kwargs)


def load_caption_vlm(env: ItemEnv):
    cfg = env.params.captions
    return load_vlm(env, cfg.model, num_frames=cfg.frames)


def load_entity_vlm(env: ItemEnv):
    return load_vlm(env, env.params.entities.model)


def load_attribute_vlm(env: ItemEnv):
    return load_vlm(env, env.params.attributes.model)


def load_subject_models(env: ItemEnv):
    """Florence-2, SigLIP and SAM2, once per worker, on the worker's device."""
    from curation.pretrained.grounding import Florence2Grounder
    from curation.pretrained.segmentation import Sam2Masker
    from curation.pretrained.verification import SiglipVerifier

    cfg, device = env.params.subjects, model_device(env.params)
    return (Florence2Grounder(cfg.grounding_model, device=device), SiglipVerifier(cfg.verifier_model, device=device),
            Sam2Masker(cfg.segmentation_model, device=device))


def load_dlib_face_models(env: ItemEnv) -> None:
    """dlib's detector, landmark and embedding models, cached per process (the item
    function calls curation.faces, which reads the cache)."""
    from curation.faces import _dlib_models

    _dlib_models()


def load_insightface(env: ItemEnv):
    """InsightFace on CUDA when the worker has a GPU and onnxruntime offers it, else on CPU."""
    import onnxruntime

    from curation.pretrained.faces import InsightFaceAnalyzer

    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider") if model_device(env.params) == "cuda" else ()
    providers = tuple(p for p in wanted if p in onnxruntime.get_available_providers()) or ("CPUExecutionProvider",)
    return InsightFaceAnalyzer(str(env.params.resolve(env.params.faces.model_dir)), providers=providers)


def load_timeline_models(env: ItemEnv):
    """Qwen2.5-VL (proposals) and CLIP (alignment re-scoring), once per worker."""
    from curation.pretrained.timeline import ClipAlignmentScorer, VlmTimelineProposer

    cfg = env.params.timelines
    device = model_device(env.params)
    return VlmTimelineProposer(cfg.proposal_model, device=device), ClipAlignmentScorer(cfg.alignment_model, device=device)


def load_signature_embedder(env: ItemEnv):
    """The pretrained frame embedder of `clip_signatures`, loaded once per worker."""
    from curation.features import build_frame_embedder

    return build_frame_embedder("pretrained", env.params.clip_signatures.pretrained_model,
                                device=model_device(env.params), params_key="clip_signatures.backend")


def load_rapidocr(env: ItemEnv) -> None:
    """RapidOCR's sessions at the analysis width, cached per process."""
    from curation.quality import _rapidocr

    _rapidocr(env.params.clip_quality.analysis_width)


def load_laion_aesthetic(env: ItemEnv):
    """CLIP + the LAION aesthetic head."""
    from curation.aesthetic import LaionAestheticScorer

    cfg = env.params.clip_quality
    return LaionAestheticScorer(env.params.resolve(cfg.aesthetic_mlp_path), cfg.aesthetic_clip_model)


def embedded_text_scanner(cfg, every: int):
    """RapidOCR over every `every`-th sampled frame, with the clip_quality thresholds."""
    from curation.quality import TextScanner

    return TextScanner(every=every, confidence=cfg.ocr_confidence, min_chars=cfg.ocr_min_chars,
                       max_line_height=cfg.ocr_max_line_height, gate_width=cfg.ocr_gate_width)


# ---------------------------------------------------------------- registries

EMBEDDED = Backend()  # runs in the item function with nothing loaded

CAPTIONERS = BackendRegistry("caption backend", ("captions.backend",), {
    "embedded": EMBEDDED,  # the pool's sidecar caption
    "pretrained": Backend(load_caption_vlm, uses_gpu=True),
})
ENTITY_LABELLERS = BackendRegistry("entity backend", ("entities.backend",), {
    "embedded": EMBEDDED,  # fine labels from caption context (spaCy + taxonomy)
    "pretrained": Backend(load_entity_vlm, uses_gpu=True),
})
ATTRIBUTE_READERS = BackendRegistry("attribute backend", ("attributes.backend",), {
    "embedded": EMBEDDED,  # the pool's sidecar attributes
    "pretrained": Backend(load_attribute_vlm, uses_gpu=True),
})
SUBJECT_TRACKERS = BackendRegistry("subject backend", ("subjects.backend",), {
    "embedded": EMBEDDED,  # background model + GrabCut
    "pretrained": Backend(load_subject_models, uses_gpu=True),
})
FACE_ANALYZERS = BackendRegistry("face backend", ("faces.backend",), {
    "embedded": Backend(load_dlib_face_models),
    "pretrained": Backend(load_insightface, uses_gpu=True),
})
TIMELINE_BUILDERS = BackendRegistry("timeline backend", ("timelines.backend",), {
    "embedded": EMBEDDED,  # change points of the subject tracks
    "pretrained": Backend(load_timeline_models, uses_gpu=True),
})
SIGNATURE_EMBEDDERS = BackendRegistry("signature backend", ("clip_signatures.backend",), {
    "embedded": EMBEDDED,  # DCT hashes (curation.dedup)
    "pretrained": Backend(load_signature_embedder, uses_gpu=True),
})
TEXT_SCANNERS = BackendRegistry("OCR backend", ("clip_quality.ocr_backend",), {
    "embedded": Backend(load_rapidocr, build=embedded_text_scanner),
    "none": Backend(),
})
AESTHETIC_SCORERS = BackendRegistry("aesthetic backend", ("clip_quality.aesthetic_backend",), {
    "none": Backend(),
    "pretrained": Backend(load_laion_aesthetic, uses_gpu=True),
})

REGISTRIES: tuple[BackendRegistry, ...] = (
    CAPTIONERS, ENTITY_LABELLERS, ATTRIBUTE_READERS, SUBJECT_TRACKERS, FACE_ANALYZERS, TIMELINE_BUILDERS,
    SIGNATURE_EMBEDDERS, TEXT_SCANNERS, AESTHETIC_SCORERS,
)


def chosen(registry: BackendRegistry[Backend], params: Any) -> Backend:
    """The entry of `registry` that params choose (at the registry's first params key).

    Raises:
        ParamsError: params name no backend registered in `registry`.
    """
    section, field = registry.params_keys[0].split(".")
    return registry.get(getattr(getattr(params, section), field))


def load_chosen(registry: BackendRegistry[Backend], env: ItemEnv):
    """The models of the backend params choose, or None when it loads none."""
    backend = chosen(registry, env.params)
    return backend.load(env) if backend.load is not None else None


def item_work(process: Callable[[ItemEnv, Any, Any], Any], registry: BackendRegistry[Backend], params: Any,
              setup: Callable[[ItemEnv], Any] | None = None) -> ItemWork:
    """The ItemWork of a stage whose models come from the backend params choose.

    Args:
        process: the item function; its `models` argument is what the backend loaded.
        setup: a stage setup that wraps the backend's loader (loads more than the backend's
            models); by default the backend's own loader.

    Raises:
        ParamsError: params name no backend registered in `registry`.
    """
    backend = chosen(registry, params)
    return ItemWork(process, setup=setup or backend.load, uses_gpu=backend.uses_gpu)
