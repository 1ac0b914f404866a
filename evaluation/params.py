"""The params sections evaluation owns: held-out identities, the demo benchmark sets,
untrained baselines, generation, metrics (named by the metric registry), the leaderboard
and the submission, and the rule that every evaluated model has a producer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from core.params import Fraction, ModelName, NonNegative, Section
from evaluation.metrics import METRIC_BUILDERS
from training.params import TrainingSections


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
    names: list[str]  # keys of evaluation.metrics.METRIC_BUILDERS
    options: dict[str, dict[str, Any]]  # metric name -> backend arguments (weights paths, device)
    opens2v_version: Literal["v1.0", "v1.1"]

    @field_validator("names")
    @classmethod
    def _registered(cls, value: list[str]) -> list[str]:
        unknown = [n for n in value if n not in METRIC_BUILDERS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; expected names from {list(METRIC_BUILDERS)}")
        return value

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
    name: ModelName
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


class EvaluationSections(TrainingSections):
    """Everything evaluation reads: its section, with training's (the phases and ablation
    variants that produce the models it evaluates) and core's."""

    evaluation: EvaluationParams

    @model_validator(mode="after")
    def _evaluated_models_have_producers(self) -> EvaluationSections:
        """Every model dvc evaluates is made by a stage of this params file (or is external),
        so a typo or a variant left out of an ablation experiment stops the run up front."""
        producible = {*self.evaluation.untrained_models, *self.phase_models,
                      *(f"ablation-{v}" for v in self.ablations.variants), *self.evaluation.external_models}
        unknown = [m for m in self.evaluation.models if m not in producible]
        if unknown:
            raise ValueError(
                f"evaluation.models {unknown}: no stage produces them; expected keys of "
                f"evaluation.untrained_models, phase_1..{self.phase_models[-1]} (one per curriculum.phase_ratios), "
                f"ablation-<v> for v in ablations.variants, or evaluation.external_models"
            )
        return self
