"""Tier 4 for curation's pretrained backends: tiny random models saved to disk and loaded
through the same `from_pretrained` code the real DINOv2 / CLIP + LAION models use."""

import numpy as np
import pytest

from core.errors import ParamsError
from curation.features import Dinov2Embedder, build_frame_embedder


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory):
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    root = tmp_path_factory.mktemp("dinov2")
    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          image_size=28, patch_size=14)
    Dinov2Model(config).save_pretrained(root)
    BitImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}, do_center_crop=True,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(root)
    return root


def test_dinov2_embedder_loads_and_separates_shots(tiny_dinov2):
    emb = build_frame_embedder("pretrained", str(tiny_dinov2))
    assert isinstance(emb, Dinov2Embedder) and emb.name.startswith("pretrained:dinov2")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    feats = emb.embed(np.stack([a, a, b]))
    assert feats.shape == (3, 32)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    assert feats[0] @ feats[1] > feats[0] @ feats[2]


def test_unknown_backend_is_an_error_naming_the_key_and_the_known_names():
    with pytest.raises(ParamsError, match=r"scene_clips.similarity_backend: unknown frame embedder 'clip'; "
                                          r"known: embedded, pretrained"):
        build_frame_embedder("clip", "x", params_key="scene_clips.similarity_backend")


@pytest.fixture(scope="module")
def tiny_aesthetic(tmp_path_factory):
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from curation.aesthetic import build_aesthetic_mlp

    root = tmp_path_factory.mktemp("aesthetic")
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=16)
    CLIPVisionModelWithProjection(config).save_pretrained(root / "clip")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(root / "clip")
    torch.save(build_aesthetic_mlp(16).state_dict(), root / "mlp.pth")
    return root


def test_clip_quality_with_pretrained_aesthetic_backend(tiny_aesthetic, make_project):
    from orchestration.params import load_params
    from core.stage import run_stage
    from core.storage import LocalObjectStore
    from core.tables import read_table
    from curation.stages import STAGES

    def edit(raw):
        raw["clip_quality"].update(aesthetic_backend="pretrained", aesthetic_clip_model=str(tiny_aesthetic / "clip"),
                                   aesthetic_mlp_path=str(tiny_aesthetic / "mlp.pth"), ocr_backend="none")
        raw["demo_pool"]["procedural"]["n_videos"] = 4

    params = load_params(make_project(edit))
    store = LocalObjectStore(params.resolve(params.storage.root))
    for stage in ("demo_pool", "raw_videos", "scene_clips", "clip_quality"):
        result = run_stage(STAGES[stage], "tiny-000", params, store)
    rows = read_table(store, "tables/clip_quality/tiny-000.parquet").to_pylist()
    assert rows and all(isinstance(r["aesthetic"], float) for r in rows)
    assert all(r["aesthetic_backend"].startswith("pretrained:clip+laion-mlp") for r in rows)
    assert all(r["ocr_backend"] == "none" and r["has_text"] is None for r in rows)
    assert result.metadata["aesthetic_backend"].startswith("pretrained")


def test_missing_aesthetic_weights_is_a_clear_error(tiny_aesthetic, tmp_path):
    from curation.aesthetic import LaionAestheticScorer

    with pytest.raises(FileNotFoundError, match="aesthetic MLP weights not found"):
        LaionAestheticScorer(tmp_path / "none.pth", tiny_aesthetic / "clip")
