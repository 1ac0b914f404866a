"""The params sections curation owns: the demo pool, the raw pool, scene cuts, clip
quality and filters, duplicate removal, the annotation backends, previews and the quality
gates (core/params.py has the machinery and the rules every section follows)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.params import Fraction, NonNegative, Params, Positive, Section, check_shard_name


class DemoShard(Section):
    kind: Literal["procedural", "real_footage", "copies", "real_cuts"]  # copies: of the real footage (duplicate removal)
    seed: Annotated[int, Field(ge=0)]


class ProceduralPoolParams(Section):
    n_videos: Annotated[int, Field(ge=4, le=500)]
    width: Annotated[int, Field(ge=64, le=1920, multiple_of=16)]
    height: Annotated[int, Field(ge=64, le=1080, multiple_of=16)]
    fps: Annotated[int, Field(ge=4, le=60)]


class RealCutsPoolParams(Section):
    n_videos: Annotated[int, Field(ge=1, le=100)]
    shots_per_video: Annotated[int, Field(ge=4, le=40)]
    same_place_rate: Fraction


class DemoPoolParams(Section):
    shards: dict[str, DemoShard]
    pool_root: str
    ground_truth_root: str
    procedural: ProceduralPoolParams
    real_cuts: RealCutsPoolParams

    @model_validator(mode="after")
    def _shard_names(self) -> DemoPoolParams:
        for name in self.shards:
            check_shard_name(name)
        return self


class RawVideosParams(Section):
    pool_root: str  # the raw pool on disk (used when pool_prefix is null)
    # None: shards are read from pool_root. A key prefix ("incoming"): shards are the objects
    # <prefix>/<shard>/ of the object store params `storage` names (curation/registry.py).
    pool_prefix: str | None
    extensions: list[str]
    min_width: Annotated[int, Field(ge=1)]
    min_height: Annotated[int, Field(ge=1)]
    min_fps: Positive
    max_fps: Positive
    min_duration_s: Positive

    @field_validator("pool_prefix")
    @classmethod
    def _pool_prefix(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip("/")
        if not v or "\\" in v or any(p in ("", ".", "..") for p in v.split("/")):
            raise ValueError("expected a relative object-key prefix without empty, '.' or '..' segments "
                             "(or null for the local pool_root)")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> RawVideosParams:
        if self.min_fps > self.max_fps:
            raise ValueError(f"min_fps ({self.min_fps}) must not exceed max_fps ({self.max_fps})")
        bad = [e for e in self.extensions if not e.startswith(".")]
        if bad:
            raise ValueError(f"extensions must start with '.', got {bad}")
        return self


class SceneClipsParams(Section):
    detector: Literal["adaptive", "content"]
    adaptive_threshold: Positive
    content_threshold: Positive
    min_scene_len_frames: Annotated[int, Field(ge=1)]
    similarity_backend: Literal["embedded", "pretrained"]
    similarity_threshold: Annotated[float, Field(ge=-1.0, le=1.0)]
    pretrained_model: str
    analysis_width: Annotated[int, Field(ge=32, le=1024)]
    merge_tolerance_frames: Annotated[int, Field(ge=0)]
    min_duration_s: Positive
    encode_crf: Annotated[int, Field(ge=0, le=51)]
    encode_preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"
    ]
    encode_threads: Annotated[int, Field(ge=0, le=64)]
    output_fps: Positive | None
    copy_whole_gops: bool
    shot_backend: Literal["transnetv2", "pyscenedetect"]
    compare_backends: bool
    transnetv2_threshold: Fraction
    transnetv2_transition_threshold: Fraction
    transnetv2_extend_threshold: Fraction
    transnetv2_min_peak: Fraction
    transnetv2_precision: Literal["float32", "bfloat16"]
    transnetv2_window_frames: Annotated[int, Field(ge=60, le=1000)]
    transnetv2_trim_last_window: bool
    quality_in_pass: bool
    min_transition_frames: Annotated[int, Field(ge=2)]
    transition_margin_frames: Annotated[int, Field(ge=0, le=25)]
    ramp_span_frames: Annotated[int, Field(ge=2, le=100)]
    ramp_threshold: Annotated[float, Field(ge=-1.0, le=1.0)]

    @model_validator(mode="after")
    def _transnetv2_hysteresis(self) -> SceneClipsParams:
        if self.transnetv2_extend_threshold > self.transnetv2_transition_threshold:
            raise ValueError(f"transnetv2_extend_threshold ({self.transnetv2_extend_threshold}) must not exceed "
                             f"transnetv2_transition_threshold ({self.transnetv2_transition_threshold}): a boundary "
                             "extends over frames less certain than the ones that start it")
        return self


class ClipQualityParams(Section):
    analysis_width: Annotated[int, Field(ge=64, le=1920)]
    sample_fps: Positive
    flow_method: Literal["farneback", "dis"]
    dis_preset: Literal["ultrafast", "fast", "medium"]
    flow_width: Annotated[int, Field(ge=32, le=1024)]
    flow_pair_stride: Annotated[int, Field(ge=1, le=8)]
    foreground_residual_px: NonNegative
    min_foreground_fraction: Fraction
    ocr_backend: Literal["embedded", "none"]
    ocr_fps: Positive
    ocr_confidence: Fraction
    ocr_min_chars: Annotated[int, Field(ge=1)]
    ocr_max_line_height: Annotated[float, Field(gt=0.0, le=1.0)]
    ocr_gate_width: Annotated[int, Field(ge=32)] | None
    ocr_gate_threshold: Annotated[float, Field(gt=0.0, lt=1.0)]
    technical_backend: Literal["classical"]
    aesthetic_backend: Literal["none", "pretrained"]
    aesthetic_clip_model: str
    aesthetic_mlp_path: str
    aesthetic_frames: Annotated[int, Field(ge=1, le=64)]
    window_frames: Annotated[int, Field(ge=8)]

    @model_validator(mode="after")
    def _widths(self) -> ClipQualityParams:
        if self.flow_width > self.analysis_width:
            raise ValueError(
                f"flow_width ({self.flow_width}) must not exceed analysis_width "
                f"({self.analysis_width}): flow runs on the shared decoded frames"
            )
        if self.ocr_fps > self.sample_fps:
            raise ValueError(
                f"ocr_fps ({self.ocr_fps}) must not exceed sample_fps ({self.sample_fps}): "
                "OCR reads a subset of the shared decoded frames"
            )
        if self.window_frames < self.aesthetic_frames:
            raise ValueError(
                f"window_frames ({self.window_frames}) must be at least aesthetic_frames "
                f"({self.aesthetic_frames}): the aesthetic frames are chosen among that many"
            )
        return self


class CuratedClipsParams(Section):
    min_motion: NonNegative
    min_text_free_area: Fraction
    min_sharpness: NonNegative
    min_brightness: Fraction
    max_brightness: Fraction
    max_noise: NonNegative
    max_blockiness: Positive
    min_aesthetic: Annotated[float, Field(ge=0.0, le=10.0)]

    @model_validator(mode="after")
    def _brightness(self) -> CuratedClipsParams:
        if self.min_brightness >= self.max_brightness:
            raise ValueError("min_brightness must be below max_brightness")
        return self


class ClipSignaturesParams(Section):
    backend: Literal["embedded", "pretrained"]
    pretrained_model: str
    sample_fps: Annotated[float, Field(gt=0.0, le=30.0)]
    width: Annotated[int, Field(ge=32, le=640)]
    zooms: Annotated[list[Annotated[float, Field(ge=0.5, le=1.0)]], Field(min_length=1, max_length=8)]

    @field_validator("zooms")
    @classmethod
    def _zooms(cls, v: list[float]) -> list[float]:
        if v[0] != 1.0 or any(b >= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("expected 1.0 (the whole frame) first, then decreasing zooms")
        return v


class ClipDedupParams(Section):
    max_frame_distance: Annotated[int, Field(ge=0, le=32)]  # of 64 bits: beyond 32 is worse than chance
    min_coverage: Annotated[float, Field(gt=0.0, le=1.0)]
    min_overlap_s: Positive
    max_embedding_distance: Annotated[float, Field(ge=0.0, le=2.0)]  # cosine distance


Backend = Literal["embedded", "pretrained"]


class CaptionsParams(Section):
    backend: Backend
    model: str
    frames: Annotated[int, Field(ge=1, le=64)]
    drop_plural: bool


class EntitiesParams(Section):
    backend: Backend
    model: str


class SubjectsParams(Section):
    backend: Backend
    grounding_model: str
    verifier_model: str
    segmentation_model: str
    verify_threshold: Fraction
    analysis_width: Annotated[int, Field(ge=64, le=1920)]
    sample_fps: Positive
    foreground_threshold: Positive
    min_area_fraction: Fraction
    grabcut_iterations: Annotated[int, Field(ge=0, le=10)]
    max_jump: Fraction
    min_detection_ratio: Fraction


class FacesParams(Section):
    backend: Backend
    model_dir: str
    fps: Positive
    max_width: Annotated[int, Field(ge=64, le=4096)]
    upsample: Annotated[int, Field(ge=0, le=3)]
    nms_overlap: Fraction
    max_embedding_distance: Positive
    representative: Annotated[int, Field(ge=1, le=32)]


class AttributesParams(Section):
    backend: Backend
    model: str


class TimelinesParams(Section):
    backend: Backend
    proposal_model: str
    alignment_model: str
    penalty: Positive
    min_segment_s: Positive
    walk_speed: Positive
    run_speed: Positive
    scale_rate: Positive
    bob_speed: Positive
    min_tiou: Fraction

    @model_validator(mode="after")
    def _speeds(self) -> TimelinesParams:
        if self.run_speed <= self.walk_speed:
            raise ValueError(f"run_speed ({self.run_speed}) must exceed walk_speed ({self.walk_speed})")
        return self


class ClipPreviewsParams(Section):
    """Annotated preview videos per clip and a contact sheet per shard (`clip_previews`)."""

    width: Annotated[int, Field(ge=64, le=1920)]  # preview frame width, px (height follows the clip)
    max_seconds: Positive  # previews cover at most the first this many seconds of a clip
    max_fps: Positive  # frames per second kept in a preview (fewer when the clip has fewer)
    crf: Annotated[int, Field(ge=0, le=51)]  # x264 quality of the preview
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"]
    mask_alpha: Fraction  # opacity of a subject mask over the frame
    sheet_columns: Annotated[int, Field(ge=1, le=16)]  # thumbnails per row of the contact sheet
    thumb_width: Annotated[int, Field(ge=64, le=640)]  # width of a thumbnail (contact sheet, browser), px


class QualityGatesParams(Section):
    """Floors and reporting of the annotation quality gates (great-expectations suites)."""

    min_width: Annotated[int, Field(ge=1)]
    min_height: Annotated[int, Field(ge=1)]
    min_duration_s: NonNegative
    min_caption_words: Annotated[int, Field(ge=0)]
    report_caption_words: Annotated[int, Field(ge=1)]
    mask_box_tolerance_px: NonNegative
    max_failure_rows_in_metadata: Annotated[int, Field(ge=1, le=100)]
    data_docs: bool


class CurationSections(Params):
    """Everything curation reads: its sections, with the storage and execution core owns."""

    demo_pool: DemoPoolParams
    raw_videos: RawVideosParams
    scene_clips: SceneClipsParams
    clip_quality: ClipQualityParams
    curated_clips: CuratedClipsParams
    clip_signatures: ClipSignaturesParams
    clip_dedup: ClipDedupParams
    captions: CaptionsParams
    entities: EntitiesParams
    subjects: SubjectsParams
    faces: FacesParams
    attributes: AttributesParams
    timelines: TimelinesParams
    clip_previews: ClipPreviewsParams
    quality_gates: QualityGatesParams
