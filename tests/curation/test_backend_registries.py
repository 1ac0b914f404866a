"""Backend registries: the one list of each capability's names, an error naming the params key
for an unknown one, and a backend added from outside the stage code running through a stage.

A new backend is its code, one registry entry and its name in the params section model;
the test below adds one from this module (the first two) and runs the captions stage with
it unchanged, and the parity test keeps the third honest.
"""

from __future__ import annotations

import typing

import numpy as np
import pytest

from core.backends import Backend, BackendRegistry
from core.errors import ParamsError
from orchestration.params import ProjectParams as Params
from orchestration.params import load_params
from core.stage import StageContext
from core.storage import LocalObjectStore
from core.tables import read_table, to_table, write_table
from core.video import write_video
from core.code_version import module_closure
from curation import annotation_stages, dedup_stages, schemas, stages, subject_stages
from curation.annotation_stages import CAPTIONERS
from curation.features import FRAME_EMBEDDERS
from curation.shot_detectors import SHOT_DETECTORS

ALL_REGISTRIES = tuple(
    value for module in (annotation_stages, subject_stages, dedup_stages, stages)
    for value in vars(module).values() if isinstance(value, BackendRegistry)
) + (FRAME_EMBEDDERS, SHOT_DETECTORS)


# Backend fields no curation registry serves: the object store is opened by core.storage, and
# technical quality has a single classical analyser (the field labels it, it chooses nothing).
NOT_CURATION_CHOICES = {"storage.backend", "clip_quality.technical_backend"}


def test_every_backend_choice_in_params_has_a_registry():
    choices = set()
    for section, model in typing.get_type_hints(Params).items():
        if isinstance(model, type) and hasattr(model, "model_fields"):
            choices |= {f"{section}.{field}" for field, hint in typing.get_type_hints(model).items()
                        if field.endswith("backend") and typing.get_origin(hint) is typing.Literal}
    served = {key for registry in ALL_REGISTRIES for key in registry.params_keys}
    assert choices - NOT_CURATION_CHOICES == served


def _allowed(params_key: str) -> set[str]:
    """The names the params section model accepts at `params_key` ("section.field")."""
    section, field = params_key.split(".")
    model = typing.get_type_hints(Params)[section]
    return set(typing.get_args(typing.get_type_hints(model)[field]))


@pytest.mark.parametrize("registry", ALL_REGISTRIES, ids=lambda r: r.capability)
def test_params_allow_exactly_the_registered_names(registry):
    for key in registry.params_keys:
        assert _allowed(key) == set(registry.names()), key


def test_unknown_name_names_the_key_and_the_known_names():
    registry = BackendRegistry("widget backend", ("widgets.backend",), {"a": 1, "b": 2})
    with pytest.raises(ParamsError, match=r"^widgets.backend: unknown widget backend 'c'; known: a, b$"):
        registry.get("c")
    with pytest.raises(ParamsError, match=r"^other.key: unknown widget backend 'c'"):
        registry.get("c", "other.key")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", 3)
    registry.register("c", 3)
    assert registry.get("c") == 3 and registry.names() == ("a", "b", "c")


def test_a_stage_covers_its_own_backends_code_and_no_other():
    # registries live beside their stage: the signature stage's code version leaves out the
    # annotation models, the captions stage's the subject and face models
    signatures = module_closure(["curation.dedup_stages"])
    assert "curation.features" in signatures and "curation.pretrained.captioner" not in signatures
    captions = module_closure(["curation.annotation_stages"])
    assert "curation.pretrained.captioner" in captions
    assert not {"curation.pretrained.segmentation", "curation.pretrained.faces"} & set(captions)


# ---------------------------------------------------------------- a backend from outside


class CountingCaptioner:
    """A captioner with the pretrained interface: `caption(frames)` and `name`."""

    name = "test:counting-captioner"

    def caption(self, frames: np.ndarray) -> str:
        return f"A man walks across the room in {len(frames)} frames."


def load_counting_captioner(env) -> CountingCaptioner:
    return CountingCaptioner()


@pytest.fixture
def one_clip_shard(tmp_path, make_project):
    """A store holding the three tables the captions stage reads, for one clip of one video."""
    params = load_params(make_project())
    store = LocalObjectStore(tmp_path / "data")
    frames = np.full((8, 32, 32, 3), 90, np.uint8)
    write_video(tmp_path / "clip.mp4", frames, fps=8)
    store.put_file("clips/tiny-000/v0-s00.mp4", tmp_path / "clip.mp4")

    def table(name, rows, schema):
        write_table(store, f"tables/{name}/tiny-000.parquet", to_table(rows, schema))

    clip = {"clip_id": "v0-s00", "video_id": "v0", "shard": "tiny-000"}
    table("raw_videos", [{"video_id": "v0", "shard": "tiny-000", "status": "ok", "caption": "A man walks.",
                          "identity": "id0", "source_path": "pool/v0.mp4"}], schemas.RAW_VIDEOS)
    table("scene_clips", [{**clip, "scene_index": 0, "start_frame": 0, "end_frame": 8, "start_s": 0.0, "end_s": 1.0,
                           "duration_s": 1.0, "fps": 8.0, "width": 32, "height": 32, "kept": True}],
          schemas.SCENE_CLIPS)
    table("curated_clips", [{**clip, "kept": True, "reasons": [], "clip_key": "clips/tiny-000/v0-s00.mp4",
                             "cropped": False, "crop": [0, 0, 32, 32], "width": 32, "height": 32, "duration_s": 1.0,
                             "fps": 8.0, "identity": "id0"}], schemas.CURATED_CLIPS)
    return params, store


def _with_caption_backend(params: Params, name: str) -> Params:
    # model_copy does not validate: the name reaches the stage as a registered-but-undeclared
    # backend would, to show that the stage needs no change for it.
    return params.model_copy(update={"captions": params.captions.model_copy(update={"backend": name, "frames": 3})})


def test_a_registered_backend_runs_through_the_stage_unchanged(one_clip_shard):
    params, store = one_clip_shard
    CAPTIONERS.register("counting", Backend(load_counting_captioner))
    try:
        ctx = StageContext("captions", "tiny-000", _with_caption_backend(params, "counting"), store)
        meta = annotation_stages.captions(ctx)
    finally:
        CAPTIONERS.unregister("counting")
    rows = read_table(store, "tables/captions/tiny-000.parquet").to_pylist()
    assert [r["caption"] for r in rows] == ["A man walks across the room in 3 frames."]
    assert rows[0]["caption_backend"] == meta["backend"] == "test:counting-captioner"
    assert "counting" not in CAPTIONERS


def test_an_unregistered_backend_stops_the_stage_before_any_work(one_clip_shard):
    params, store = one_clip_shard
    ctx = StageContext("captions", "tiny-000", _with_caption_backend(params, "nonexistent"), store)
    with pytest.raises(ParamsError, match=r"^captions.backend: unknown caption backend 'nonexistent'; "
                                          r"known: embedded, pretrained$"):
        annotation_stages.captions(ctx)
    assert not store.exists("tables/captions/tiny-000.parquet")
