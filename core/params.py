"""Typed, validated view of params.yaml.

Every section is a frozen pydantic model that forbids unknown keys, so a typo or a
wrong value stops the run before any work starts with a message naming the key
(`scene_clips.similarity_threshold: expected a number <= 1, got 1.5`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from core.errors import ParamsError

DEFAULT_PARAMS_PATH = Path("params.yaml")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Keys that would hold S3 secrets: refused in params (credentials come from the environment).
_SECRET_KEYS = {"access_key", "secret_key", "session_token", "aws_access_key_id", "aws_secret_access_key",
                "password", "credentials"}
STORAGE_BACKEND_ENV = "REACTID_STORAGE_BACKEND"


class S3StorageParams(Section):
    """Non-secret settings of an S3-compatible store; credentials come from the environment."""

    endpoint: str = "s3.amazonaws.com"  # host[:port], no scheme
    bucket: str | None = None
    prefix: str = ""  # key prefix inside the bucket
    secure: bool = True  # HTTPS
    region: str | None = None
    part_size_mb: Annotated[int, Field(ge=5, le=5120)] = 64  # multipart part size (S3: 5 MiB .. 5 GiB)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            secret = sorted(k for k in raw if str(k).lower() in _SECRET_KEYS)
            if secret:
                # Raised outside pydantic's error path so the value is never echoed.
                raise ParamsError(
                    f"storage.s3.{secret[0]}: credentials are never read from params; export "
                    "REACTID_S3_ACCESS_KEY and REACTID_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY) instead, and remove the key from the params file"
                )
        return raw

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not v or "://" in v or "/" in v:
            raise ValueError("expected host[:port] without scheme or path (set secure: false for http)")
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        import re

        if v is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", v):
            raise ValueError("expected an S3 bucket name: 3-63 lowercase letters, digits, '.', '-'")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip("/")
        if v and any(p in ("", ".", "..") for p in v.split("/")):
            raise ValueError("expected a relative key prefix without empty, '.' or '..' segments")
        return v


class StorageParams(Section):
    backend: Literal["local", "s3"]  # REACTID_STORAGE_BACKEND overrides (core.params.load_params)
    root: str  # the local backend's directory
    s3: S3StorageParams | None = None

    @model_validator(mode="after")
    def _s3_settings(self) -> StorageParams:
        if self.backend == "s3" and (self.s3 is None or not self.s3.bucket):
            raise ValueError("storage.s3.bucket: required when storage.backend is s3 (set storage.s3.bucket "
                             "and storage.s3.endpoint)")
        return self


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
    output_fps: Positive | None
    shot_backend: Literal["transnetv2", "pyscenedetect"]
    compare_backends: bool
    transnetv2_threshold: Fraction
    transnetv2_transition_threshold: Fraction
    transnetv2_extend_threshold: Fraction
    transnetv2_min_peak: Fraction
    transnetv2_precision: Literal["float32", "bfloat16"]
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


class DatasetBrowserParams(Section):
    """The static dataset browser page (`dataset_browser`)."""

    examples_per_quartile: Annotated[int, Field(ge=1, le=12)]  # easy-to-hard examples shown per quartile


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


class TrainingDemoOverrides(Section):
    """Values that replace the paper's recipe for a few-minute CPU run (``use_demo: true``).

    A key left out keeps the paper's value.
    """

    lr: Positive | None = None
    warmup_steps: Annotated[int, Field(ge=1)] | None = None
    total_steps: Annotated[int, Field(ge=1)] | None = None
    global_batch: Annotated[int, Field(ge=1)] | None = None
    micro_batch: Annotated[int, Field(ge=1)] | None = None
    zero_stage: Literal[0, 1, 2, 3] | None = None
    precision: Literal["fp32", "bf16"] | None = None
    checkpoint_every: Annotated[int, Field(ge=1)] | None = None
    cpu_threads: Annotated[int, Field(ge=0)] | None = None


class TrainingParams(Section):
    """DeepSpeed training of the ReactID model (paper Sec. 4.1 for the defaults).

    ``effective()`` gives the settings a run uses: these, or these with ``demo`` applied
    when ``use_demo`` is true.
    """

    preset: str
    variant: str
    lr: Positive
    warmup_steps: Annotated[int, Field(ge=1)]
    total_steps: Annotated[int, Field(ge=1)]
    lr_schedule: Literal["constant", "linear_decay"]
    global_batch: Annotated[int, Field(ge=1)]
    micro_batch: Annotated[int, Field(ge=1)]
    zero_stage: Literal[0, 1, 2, 3]
    precision: Literal["fp32", "bf16"]
    weight_decay: NonNegative
    grad_clip: NonNegative
    cfg_dropout: Fraction
    mask_loss_weight: NonNegative
    checkpoint_every: Annotated[int, Field(ge=1)]
    seed: Annotated[int, Field(ge=0)]
    cpu_threads: Annotated[int, Field(ge=0)]
    use_demo: bool
    demo: TrainingDemoOverrides

    @model_validator(mode="after")
    def _consistent(self) -> TrainingParams:
        _check_training_run(self, "")
        if self.use_demo:
            _check_training_run(self.effective(), "demo.")
        return self

    def effective(self) -> TrainingParams:
        """The settings a run uses (``use_demo`` false in the result)."""
        if not self.use_demo:
            return self
        overrides = self.demo.model_dump(exclude_none=True)
        return self.model_copy(update={**overrides, "use_demo": False})


def _check_training_run(run: TrainingParams, prefix: str) -> None:
    if run.global_batch % run.micro_batch:
        raise ValueError(
            f"{prefix}global_batch ({run.global_batch}) must be a multiple of "
            f"{prefix}micro_batch ({run.micro_batch})"
        )
    if run.warmup_steps > run.total_steps:
        raise ValueError(
            f"{prefix}warmup_steps ({run.warmup_steps}) must not exceed "
            f"{prefix}total_steps ({run.total_steps})"
        )




def _finite_non_negative(values: list[float]) -> list[float]:
    import math

    bad = [f"[{i}] = {v}" for i, v in enumerate(values) if not math.isfinite(v) or v < 0]
    if bad:
        raise ValueError(f"expected finite numbers >= 0; {', '.join(bad)}")
    return values


class TrainingSamplesParams(Section):
    """Reference crops and intra/inter-clip pairing of training samples (paper Sec. 3.2)."""

    reference_frames: Literal["representative", "largest_mask", "uniform"]
    references_per_sample: Annotated[int, Field(ge=1, le=8)]
    reference_crop_size: Annotated[int, Field(ge=32, le=1024)]
    reference_padding: Fraction
    inter_clip_per_subject: Annotated[int, Field(ge=0, le=16)]
    inter_clip_similarity: Annotated[float, Field(ge=-1.0, le=1.0)]
    similarity_backend: Literal["embedded", "pretrained"]
    similarity_model: str


class DifficultyParams(Section):
    """D_sub, D_app, D_sam and their weights in D_overall (paper Eq. 1-2, Sec. 4.1)."""

    appearance_backend: Literal["embedded", "pretrained"]
    appearance_model: str
    lambda_sub: float
    lambda_app: float
    lambda_sam: float

    @field_validator("lambda_sub", "lambda_app", "lambda_sam")
    @classmethod
    def _weight(cls, value: float) -> float:
        import math

        if not math.isfinite(value) or value < 0:
            raise ValueError("expected a finite weight >= 0")
        return value

    @model_validator(mode="after")
    def _some_weight(self) -> DifficultyParams:
        if not (self.lambda_sub or self.lambda_app or self.lambda_sam):
            raise ValueError("lambda_sub, lambda_app and lambda_sam are all 0: D_overall would be 0 for every sample")
        return self


class CurriculumParams(Section):
    """Phases of the easy-to-hard curriculum; total steps and global batch come from `training`."""

    phase_ratios: list[float]
    inter_clip_ratios: list[float]
    demo_inter_clip_ratios: list[float]  # used instead when training.use_demo is true
    seed: Annotated[int, Field(ge=0)]
    histogram_bins: Annotated[int, Field(ge=4, le=1000)]
    deepspeed_metric_scale: Annotated[int, Field(ge=1, le=1_000_000_000)]

    @field_validator("phase_ratios")
    @classmethod
    def _phase_ratios(cls, value: list[float]) -> list[float]:
        _finite_non_negative(value)
        if not sum(value) > 0:
            raise ValueError("expected ratios that sum to a positive number")
        return value

    @field_validator("inter_clip_ratios", "demo_inter_clip_ratios")
    @classmethod
    def _inter_clip_ratios(cls, value: list[float]) -> list[float]:
        _finite_non_negative(value)
        if any(r > 1 for r in value):
            raise ValueError("expected shares of a batch, each <= 1")
        return value

    @model_validator(mode="after")
    def _one_ratio_per_phase(self) -> CurriculumParams:
        for key in ("inter_clip_ratios", "demo_inter_clip_ratios"):
            if len(getattr(self, key)) != len(self.phase_ratios):
                raise ValueError(
                    f"{key} has {len(getattr(self, key))} entries and phase_ratios "
                    f"{len(self.phase_ratios)}: expected one inter-clip ratio per phase"
                )
        return self


# ---------------------------------------------------------------- training runs (issue 6)


class AblationsParams(Section):
    """The ablation matrix (paper Tables 3-6): one short training per variant."""

    variants: list[str]  # training.ablations.ABLATION_VARIANTS; the dvc foreach and `make demo` run these
    total_steps: Annotated[int, Field(ge=1)]  # steps of one run (GPU length)
    demo_total_steps: Annotated[int, Field(ge=1)]  # steps of one run with training.use_demo

    @field_validator("variants")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from training.ablations import ABLATION_VARIANTS

        unknown = [v for v in value if v not in ABLATION_VARIANTS]
        if unknown:
            raise ValueError(f"unknown variants {unknown}; expected names from {list(ABLATION_VARIANTS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"variants repeat: {value}")
        return value


class RetrainingParams(Section):
    """When the retraining job (curriculum, latent cache, the four phases) runs."""

    cron: str  # Dagster schedule, cron syntax
    # The schedule starts switched on (it still skips a tick when no gated verdict changed).
    schedule_running: bool = False
    # Phase models the retraining_scoring sensor scores on every benchmark after a successful retraining run.
    score_models: list[Annotated[str, Field(pattern=r"^phase_[1-4]$")]] = ["phase_4"]

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"expected a 5-field cron expression, got {value!r}")
        return value


# ---------------------------------------------------------------- orchestration (issue 8)


class NewShardSensorParams(Section):
    """The sensor that registers shards appearing in the raw pool (orchestration/sensors.py)."""

    running: bool  # default status of the sensor (the UI can still switch it)
    interval_s: Annotated[int, Field(ge=5)]  # minimum seconds between evaluations
    # The sensor watches the pool raw_videos reads (raw_videos.pool_root or raw_videos.pool_prefix).
    settle_s: NonNegative  # local pools: the shard's newest file must be at least this old


class RunRetriesParams(Section):
    """Dagster run retries: a failed run is re-executed from its failure (instance dagster.yaml + job tags)."""

    max_retries: Annotated[int, Field(ge=0, le=10)]
    # false: only a crashed run worker (OOM kill, lost node) re-runs the whole run; asset failures
    # are retried by op_retries, which knows which errors are transient.
    retry_on_asset_or_op_failure: bool


class OpRetriesParams(Section):
    """RetryPolicy of every step of the platform's jobs (transient errors only)."""

    max_retries: Annotated[int, Field(ge=0, le=10)]
    delay_s: NonNegative
    backoff: Literal["linear", "exponential"]


class ConcurrencyParams(Section):
    """Instance-wide limits (written into $DAGSTER_HOME/dagster.yaml by `reactid dagster-home`)."""

    gpu_slots: Annotated[int, Field(ge=1)]  # runs holding the "gpu" pool (training, ablations, benchmark videos) at once
    max_concurrent_runs: Annotated[int, Field(ge=1)]


class AlertsParams(Section):
    """Where the run-failure sensor records failed runs."""

    key: str  # object-store key of the JSON-lines alert log
    webhook_env: str  # environment variable holding an optional webhook URL (never the URL itself)


class OrchestrationParams(Section):
    new_shards: NewShardSensorParams
    run_retries: RunRetriesParams
    op_retries: OpRetriesParams
    concurrency: ConcurrencyParams
    alerts: AlertsParams


# ---------------------------------------------------------------- evaluation (issue 7)

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
METRIC_NAMES = Literal[
    "motion_amplitude", "motion_smoothness_flowwarp_proxy", "facesim_dlib_proxy",
    "timeline_alignment_flow_proxy", "motion_smoothness", "motion_smoothness_vbench_amt",
    "aesthetics", "facesim", "gme", "nexus", "natural",
    "nexus_grounding_dino_proxy", "nexus_yolo_world_text_proxy", "natural_api_proxy", "natural_qwen_proxy",
    "clip_t_global", "clip_t_subaction", "videoscore_tva", "videoscore_tc", "videoscore_tva_subaction",
]


class HeldOutParams(Section):
    """Identities kept out of training and used only by the demo benchmark sets.

    An identity is held out when sha256("<seed>:<identity>"), read as a number in [0, 1),
    is below ``fraction``; the identities with the smallest numbers top that up to the
    minimums (with a detected face, and without).
    """

    seed: Annotated[int, Field(ge=0)]
    fraction: Fraction
    min_face_identities: Annotated[int, Field(ge=0)]
    min_other_identities: Annotated[int, Field(ge=0)]


class DemoSetsParams(Section):
    entries_per_set: Annotated[int, Field(ge=1, le=200)]
    reference_crop_size: Annotated[int, Field(ge=32, le=1024)]
    subject_padding: Annotated[float, Field(ge=0.0, le=1.0)]
    face_padding: Annotated[float, Field(ge=0.0, le=2.0)]


class UntrainedModelParams(Section):
    preset: str
    variant: str
    seed: Annotated[int, Field(ge=0)]


class GenerationParams(Section):
    """Sampling of the benchmark videos; timeline entries get the frames their timeline needs."""

    height: Annotated[int, Field(ge=16, le=2048)]
    width: Annotated[int, Field(ge=16, le=2048)]
    num_frames: Annotated[int, Field(ge=1)]
    max_segment_frames: Annotated[int, Field(ge=1)]
    segment_overlap: Annotated[int, Field(ge=0)]
    num_inference_steps: Annotated[int, Field(ge=1, le=1000)]
    guidance_scale: NonNegative
    negative_prompt: str
    seed: Annotated[int, Field(ge=0)]
    device: str
    cpu_threads: Annotated[int, Field(ge=0)]  # torch intra-op threads when device is cpu; 0 keeps the default

    @model_validator(mode="after")
    def _segment(self) -> GenerationParams:
        if self.num_frames > self.max_segment_frames:
            raise ValueError(
                f"num_frames ({self.num_frames}) must not exceed max_segment_frames ({self.max_segment_frames})"
            )
        return self


class MetricsParams(Section):
    names: list[METRIC_NAMES]
    options: dict[str, dict[str, Any]]  # metric name -> backend arguments (weights paths, device)
    opens2v_version: Literal["v1.0", "v1.1"]

    @model_validator(mode="after")
    def _known_options(self) -> MetricsParams:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"names repeat: {self.names}")
        stray = sorted(set(self.options) - set(self.names))
        if stray:
            raise ValueError(f"options given for metrics not in names: {stray}")
        return self


class LeaderboardParams(Section):
    reference_variant: str  # ablation deltas are measured against the model of this variant


class SubmissionRunParams(Section):
    name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    model: ModelName
    primary: bool


class SubmissionParams(Section):
    runs: Annotated[list[SubmissionRunParams], Field(min_length=1, max_length=3)]
    proposal_layout: bool  # also package Track 1 as the proposal's idNNN/promptK.mp4

    @model_validator(mode="after")
    def _runs(self) -> SubmissionParams:
        names = [r.name for r in self.runs]
        if len(set(names)) != len(names):
            raise ValueError(f"run names repeat: {names}")
        if sum(r.primary for r in self.runs) != 1:
            raise ValueError("exactly one run must be primary")
        return self


class EvaluationParams(Section):
    held_out: HeldOutParams
    demo_sets: DemoSetsParams
    untrained_models: dict[ModelName, UntrainedModelParams]
    models: list[ModelName]  # registered models `dvc repro` evaluates (Dagster: the "models" partitions)
    external_models: list[ModelName] = []  # registered with `reactid register-model`, no stage makes them
    generation: GenerationParams
    metrics: MetricsParams
    leaderboard: LeaderboardParams
    submission: SubmissionParams

    @model_validator(mode="after")
    def _models(self) -> EvaluationParams:
        bad = [n for n in self.untrained_models if not n.startswith("untrained")]
        if bad:
            raise ValueError(f"untrained_models names must start with 'untrained' (random weights): {bad}")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models repeat: {self.models}")
        missing = sorted({r.model for r in self.submission.runs} - set(self.models))
        if missing:
            raise ValueError(f"submission runs use models not in evaluation.models: {missing}")
        return self


# lakeFS's own rules (pkg/validator/validate.go, pkg/graveler/validate.go): a real server
# answers 400 to names that break them, so they are refused here, before any work starts.
LAKEFS_REPOSITORY_RE = r"[a-z0-9][a-z0-9-]{2,62}"
LAKEFS_BRANCH_RE = r"\w[-\w]*"


def check_lakefs_tag(tag: str) -> str:
    """A lakeFS tag id: git's ref rules as lakeFS applies them (no '/', '..', '@{', '^:?*[\\',
    spaces or control characters; not '@'; not ending in '.' or '.lock')."""
    import re

    if (not tag or tag == "@" or tag.endswith((".", ".lock")) or any(s in tag for s in ("..", "/", "@{"))
            or re.search(r"[\^:?*\[\\\s\x00-\x1f\x7f]", tag)):
        raise ParamsError(f"lakeFS tag {tag!r}: not a valid tag id (no '/', '..', '@{{', '^:?*[\\' or spaces)")
    return tag


class LakeFSParams(Section):
    """Data versioning with lakeFS (off by default: the embedded demo needs no server).

    Credentials are never settings: they come from LAKEFS_ACCESS_KEY_ID and
    LAKEFS_SECRET_ACCESS_KEY (unknown keys are refused, so they cannot be put here either).
    """

    enabled: bool = False
    endpoint: str = "http://localhost:8000"   # the lakeFS server; /api/v1 is appended when no path is given
    repository: str = "reactid-data"
    main_branch: str = "main"
    branch_prefix: str = "train-"             # a training run's branch: <branch_prefix><run_name>
    run_name: str = "demo"                    # the training run the quality gates commit to
    data_prefix: str = "reactid/"             # object paths in the repository: <data_prefix><store key>
    tag_prefix: str = "model-"                # promotion tags: <tag_prefix><run_name>-<evaluation fingerprint>
    pre_sign: bool = False                    # upload through lakeFS (False) or to pre-signed URLs
    timeout_s: Positive = 30.0                # per request (connect and read)
    retries: Annotated[int, Field(ge=0, le=10)] = 2  # failed connections (and GETs) retried; a sent POST never is

    @model_validator(mode="after")
    def _lakefs_names(self) -> LakeFSParams:
        import re

        if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", self.endpoint):
            raise ValueError(f"endpoint {self.endpoint!r}: expected http(s)://host[:port][/api/v1]")
        if not re.fullmatch(LAKEFS_REPOSITORY_RE, self.repository):
            raise ValueError(f"repository {self.repository!r}: lakeFS repository ids match {LAKEFS_REPOSITORY_RE}")
        for name, value in (("main_branch", self.main_branch), ("branch_prefix + run_name", self.run_branch)):
            if not re.fullmatch(LAKEFS_BRANCH_RE, value):
                raise ValueError(f"{name} {value!r}: lakeFS branch ids match {LAKEFS_BRANCH_RE} "
                                 "(letters, digits, '_' and '-'; no '/')")
        if self.data_prefix.startswith("/") or (self.data_prefix and not self.data_prefix.endswith("/")):
            raise ValueError(f"data_prefix {self.data_prefix!r}: expected a relative folder ending in '/' (or '')")
        try:
            check_lakefs_tag(f"{self.tag_prefix}{self.run_name}-0")
        except ParamsError as e:
            raise ValueError(f"tag_prefix/run_name: {e}") from None
        return self

    @property
    def run_branch(self) -> str:
        return f"{self.branch_prefix}{self.run_name}"


# ---------------------------------------------------------------- execution engine


class ExecutionParams(Section):
    """Where a stage's per-item work runs (core/execution.py); never what it produces."""

    engine: Literal["local", "ray"] = "local"
    workers: Annotated[int, Field(ge=1, le=100_000)] = 2
    ray_address: str | None = None  # None: a local Ray with `workers` CPUs; else "auto" or "ray://host:port"
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 4
    max_in_flight: Annotated[int, Field(ge=1, le=64)] = 2
    cpus_per_worker: Annotated[float, Field(gt=0.0, le=256.0)] = 1.0
    gpus_per_actor: Annotated[float, Field(ge=0.0, le=8.0)] = 0.0
    object_store_memory_mb: Annotated[int, Field(ge=75)] | None = None  # Ray's minimum is 75 MiB
    scratch_dir: str = ".scratch"

    @field_validator("ray_address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        import re

        if v is not None and v != "auto" and not re.fullmatch(r"(ray://)?[A-Za-z0-9.-]+:\d{1,5}", v):
            raise ValueError('expected null, "auto", "host:port" or "ray://host:port"')
        return v

    @field_validator("gpus_per_actor")
    @classmethod
    def _gpu_share(cls, v: float) -> float:
        # Ray places a fractional GPU request only if it is below 1; above 1 it must be whole.
        if v > 1 and v != int(v):
            raise ValueError("expected a share below 1 (0.25: four actors per GPU) or a whole number of GPUs")
        return v

    @model_validator(mode="after")
    def _local_only_settings(self) -> ExecutionParams:
        if self.ray_address is not None and self.object_store_memory_mb is not None:
            raise ValueError("object_store_memory_mb sizes a local Ray; a cluster sets its own (ray_address is set)")
        return self


class Params(Section):
    storage: StorageParams
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
    dataset_browser: DatasetBrowserParams
    quality_gates: QualityGatesParams
    training: TrainingParams
    training_samples: TrainingSamplesParams
    difficulty: DifficultyParams
    curriculum: CurriculumParams
    evaluation: EvaluationParams
    ablations: AblationsParams
    retraining: RetrainingParams
    orchestration: OrchestrationParams
    lakefs: LakeFSParams = LakeFSParams()  # data versioning; off unless params.yaml turns it on
    execution: ExecutionParams = ExecutionParams()  # local in-process unless params.yaml says ray

    @model_validator(mode="after")
    def _step_counts_fill_every_phase(self) -> Params:
        """Each run's steps split into the curriculum's phases with at least one step each;
        checked here so a short run stops when params load, naming its key, not when its
        stage starts after everything upstream has run."""
        from core.steps import phase_lengths

        ratios = self.curriculum.phase_ratios
        counts = {"training.total_steps": self.training.total_steps, "ablations.total_steps": self.ablations.total_steps}
        if self.training.use_demo:
            counts["training.demo.total_steps"] = self.training.effective().total_steps
            counts["ablations.demo_total_steps"] = self.ablations.demo_total_steps
        for key, steps in counts.items():
            lengths = phase_lengths(steps, ratios)
            if min(lengths) < 1:
                raise ValueError(f"{key} ({steps}) split by curriculum.phase_ratios {ratios} gives phases of "
                                 f"{lengths} steps: every phase needs at least one step")
        return self

    @model_validator(mode="after")
    def _evaluated_models_have_producers(self) -> Params:
        """Every model dvc evaluates is made by a stage of this params file (or is external),
        so a typo or a variant left out of an ablation experiment stops the run up front."""
        producible = {*self.evaluation.untrained_models, *(f"phase_{k}" for k in range(1, 5)),
                      *(f"ablation-{v}" for v in self.ablations.variants), *self.evaluation.external_models}
        unknown = [m for m in self.evaluation.models if m not in producible]
        if unknown:
            raise ValueError(
                f"evaluation.models {unknown}: no stage produces them; expected keys of "
                f"evaluation.untrained_models, phase_1..phase_4, ablation-<v> for v in ablations.variants, "
                f"or evaluation.external_models"
            )
        return self

    # Relative paths in params resolve against the params file's folder, wherever the
    # process runs from (Dagster run workers, dvc, the CLI).
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self._base_dir / p


def check_shard_name(name: str) -> str:
    """A shard name becomes a path segment and a Dagster partition key."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        raise ParamsError(
            f"shard name {name!r}: expected 1-64 characters of letters, digits, '_', '.', '-'"
            " starting with a letter or digit"
        )
    return name


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "<top level>"
    kind = error["type"]
    if kind == "missing":
        return f"{key}: missing (required)"
    if kind == "extra_forbidden":
        return f"{key}: unknown key (typo?)"
    got = error.get("input")
    msg = error["msg"]
    if kind == "literal_error":
        msg = msg.replace("Input should be", "expected one of")
    elif msg.startswith("Input should be"):
        msg = "expected a value " + msg[len("Input should be ") :]
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{key}: {msg}, got {got!r}"


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping.

    Raises:
        ParamsError: listing every invalid key with what was expected.
    """
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ParamsError(f"{source} is invalid:\n  " + "\n  ".join(lines)) from None


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> Params:
    """Read and validate params.yaml.

    The environment variable REACTID_STORAGE_BACKEND, when set, replaces `storage.backend`.

    Raises:
        ParamsError: the file is missing, not YAML, or has invalid settings.
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} not found (run from the project root?)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    backend = os.environ.get(STORAGE_BACKEND_ENV)
    if backend and isinstance(raw, dict) and isinstance(raw.get("storage"), dict):
        raw["storage"] = {**raw["storage"], "backend": backend}
    params = parse_params(raw, source=str(path))
    params._base_dir = path.resolve().parent
    return params


def section_dict(params: Params, section: str) -> Any:
    """A section, or a dotted key inside one (``evaluation.generation``), as plain data
    (for fingerprints and reports)."""
    value: Any = params
    for part in section.split("."):
        value = getattr(value, part)
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)
