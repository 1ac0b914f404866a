"""The params sections training owns: the trainer, training samples, difficulty and its
lambdas, the curriculum's phase ratios, the ablation matrix and the dataset browser, with
the rules that span them (every run's steps fill every phase; no ablation scores with all
lambdas at 0).

Each rule is checked here, once, when params load; the curriculum and difficulty functions
take the values as given.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.params import Fraction, NonNegative, Params, Positive, Section
from training.ablations import ABLATION_VARIANTS, variant_weights
from training.curriculum import phase_lengths
from training.difficulty import DifficultyWeights


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

    def weights(self) -> DifficultyWeights:
        return DifficultyWeights(self.lambda_sub, self.lambda_app, self.lambda_sam)


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


# ---------------------------------------------------------------- training runs


class AblationsParams(Section):
    """The ablation matrix (paper Tables 3-6): one short training per variant."""

    variants: list[str]  # of ABLATION_VARIANTS; the dvc foreach and `make demo` run these
    total_steps: Annotated[int, Field(ge=1)]  # steps of one run (GPU length)
    demo_total_steps: Annotated[int, Field(ge=1)]  # steps of one run with training.use_demo

    @field_validator("variants")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in ABLATION_VARIANTS]
        if unknown:
            raise ValueError(f"unknown variants {unknown}; expected names from {list(ABLATION_VARIANTS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"variants repeat: {value}")
        return value


class DatasetBrowserParams(Section):
    """The static dataset browser page (`dataset_browser`)."""

    examples_per_quartile: Annotated[int, Field(ge=1, le=12)]  # easy-to-hard examples shown per quartile


class TrainingSections(Params):
    """Everything training reads of its own: its sections, with the storage and execution core owns.

    (The training_samples stage also reads `evaluation.held_out`, the identities the
    benchmarks keep out of training, from the full params its stage context carries.)
    """

    training: TrainingParams
    training_samples: TrainingSamplesParams
    difficulty: DifficultyParams
    curriculum: CurriculumParams
    ablations: AblationsParams
    dataset_browser: DatasetBrowserParams

    @property
    def phase_models(self) -> tuple[str, ...]:
        """The models the curriculum phases register, one per `curriculum.phase_ratios` entry."""
        return tuple(f"phase_{k}" for k in range(1, len(self.curriculum.phase_ratios) + 1))

    @model_validator(mode="after")
    def _step_counts_fill_every_phase(self) -> TrainingSections:
        """Each run's steps split into the curriculum's phases with at least one step each;
        checked here so a short run stops when params load, naming its key, not when its
        stage starts after everything upstream has run."""
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
    def _every_ablation_scores_with_a_weight(self) -> TrainingSections:
        """A no_d_* variant sets its lambda to 0; the others must not all be 0 already."""
        for variant in self.ablations.variants:
            weights = variant_weights(variant, self.difficulty.weights())
            if not (weights.lambda_sub or weights.lambda_app or weights.lambda_sam):
                raise ValueError(f"ablations.variants {variant!r} sets its lambda to 0 and difficulty leaves the other "
                                 "two at 0: D_overall would be 0 for every sample of that run")
        return self
