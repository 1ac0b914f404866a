"""VideoScore text-to-video alignment (TVA) and temporal consistency (TC), as in ReactID Table 4.

VideoScore (TIGER-Lab, He et al. 2024) is Mantis-8B-Idefics2 with a regression head: the
``Idefics2Model`` backbone, a ``score`` linear layer on its last hidden state, read at the last
non-padding token, giving five aspects on a 1-4 scale: visual quality, temporal consistency,
dynamic degree, text-to-video alignment, factual consistency. Its inference script
(``examples/run_videoscore.py``):

* frames: all of them when the video has at most ``MAX_NUM_FRAMES`` (48 for
  ``TIGER-Lab/VideoScore-v1.1``, 16 for ``TIGER-Lab/VideoScore``), else
  ``arange(0, T, T / max).astype(int)``;
* text: :data:`REGRESSION_QUERY_PROMPT` with the prompt, then ``"<image> "`` per frame;
* the checkpoint's ``Idefics2Processor`` turns that into model inputs.

transformers has no ``Idefics2ForSequenceClassification`` (Mantis defines it), so
:class:`Idefics2Regression` rebuilds that head on transformers' ``Idefics2Model``: the
checkpoint's ``model.*`` and ``score.*`` weights load into it unchanged through
``from_pretrained``.

Metrics (raw 1-4 values, as the paper reports them: TVA about 2.7, TC about 2.4):

* ``videoscore_tva`` / ``videoscore_tc``: the whole video with the (global) prompt;
* ``videoscore_tva_subaction``: TVA of each timeline sub-action's window (frames as in
  :func:`evaluation.metrics.clip_t.subaction_windows`) against its description, mean over
  sub-actions (this project's windowing).

VideoScore2 (Qwen2.5-VL, generative, three integer scores, no temporal-consistency aspect) is a
different model and is not what the paper used.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from pathlib import Path

import numpy as np

from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, check_frames, not_computed
from evaluation.metrics.clip_t import subaction_windows

MAX_NUM_FRAMES = 48
ASPECTS = (
    "visual quality",
    "temporal consistency",
    "dynamic degree",
    "text-to-video alignment",
    "factual consistency",
)

# VideoScore's query prompt, verbatim: the regression head was trained on it.
REGRESSION_QUERY_PROMPT = """
Suppose you are an expert in judging and evaluating the quality of AI-generated videos,
please watch the following frames of a given video and see the text prompt for generating the video,
then give scores from 5 different dimensions:
(1) visual quality: the quality of the video in terms of clearness, resolution, brightness, and color
(2) temporal consistency, both the consistency of objects or humans and the smoothness of motion or movements
(3) dynamic degree, the degree of dynamic changes
(4) text-to-video alignment, the alignment between the text prompt and the video content
(5) factual consistency, the consistency of the video content with the common-sense and factual knowledge

for each dimension, output a float number from 1.0 to 4.0,
the higher the number is, the better the video performs in that sub-score, 
the lowest 1.0 means Bad, the highest 4.0 means Perfect/Real (the video is like a real video)
Here is an output example:
visual quality: 3.2
temporal consistency: 2.7
dynamic degree: 4.0
text-to-video alignment: 2.3
factual consistency: 1.8

For this video, the text prompt is "{text_prompt}",
all the frames of video are as follows:
"""


def videoscore_frame_indices(total: int, max_frames: int = MAX_NUM_FRAMES) -> np.ndarray:
    """All frames up to ``max_frames``, else ``arange(0, total, total / max_frames)`` as int."""
    if total <= 0 or max_frames <= 0:
        raise ValueError(f"need total > 0 and max_frames > 0, got {total}, {max_frames}")
    if total > max_frames:
        return np.arange(0, total, total / max_frames).astype(np.int64)
    return np.arange(total, dtype=np.int64)


def videoscore_text(prompt: str, num_frames: int) -> str:
    """The query text with one ``<image>`` slot per frame."""
    text = REGRESSION_QUERY_PROMPT.format(text_prompt=prompt)
    return text + "<image> " * max(0, num_frames - text.count("<image>"))


@functools.cache
def regression_model_class():
    """``Idefics2Regression``, defined on first use so importing this module stays light.

    Mantis' ``Idefics2ForSequenceClassification``: an ``Idefics2Model`` backbone and a ``score``
    linear head read at the last non-padding token (the first padding position minus one,
    modulo the length; the last position when nothing is padded).
    """
    import torch
    from torch import nn
    from transformers.models.idefics2.modeling_idefics2 import Idefics2Model, Idefics2PreTrainedModel

    class Idefics2Regression(Idefics2PreTrainedModel):
        def __init__(self, config) -> None:
            super().__init__(config)
            self.num_labels = config.num_labels
            self.model = Idefics2Model(config)
            self.score = nn.Linear(config.text_config.hidden_size, config.num_labels)
            self.post_init()

        def forward(self, input_ids, attention_mask=None, pixel_values=None, pixel_attention_mask=None):
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                pixel_attention_mask=pixel_attention_mask, return_dict=True,
            ).last_hidden_state
            logits = self.score(hidden)
            rows = torch.arange(input_ids.shape[0], device=logits.device)
            pad = getattr(self.config, "pad_token_id", None)
            if pad is None:
                last = torch.full_like(rows, input_ids.shape[-1] - 1)
            else:
                last = (torch.eq(input_ids, pad).int().argmax(-1) - 1) % input_ids.shape[-1]
            return logits[rows, last.to(logits.device)]

    return Idefics2Regression


class VideoScoreModel:
    """VideoScore's five aspect scores of a clip and a prompt.

    Args:
        model_path: hub id or directory (``TIGER-Lab/VideoScore-v1.1``).
        device: torch device string.
        dtype: weights dtype (bfloat16 on GPU as the authors; float32 default for CPU).
        max_frames: 48 for v1.1, 16 for the first VideoScore.
        cache_size: recent (clip, prompt) results kept, so TVA and TC of one clip share a pass.
    """

    def __init__(
        self,
        model_path: str | Path = "TIGER-Lab/VideoScore-v1.1",
        device: str = "cpu",
        dtype: str = "float32",
        max_frames: int = MAX_NUM_FRAMES,
        cache_size: int = 8,
    ) -> None:
        import torch
        from transformers import AutoConfig, AutoProcessor

        from curation.pretrained.errors import BackendLoadError

        self._torch = torch
        self.model_path = str(model_path)
        config = AutoConfig.from_pretrained(self.model_path)
        if config.model_type != "idefics2" or config.num_labels != len(ASPECTS):
            raise BackendLoadError(
                f"{self.model_path} holds a {config.model_type!r} model with {config.num_labels} labels; "
                f"VideoScore is an 'idefics2' regression model with {len(ASPECTS)}"
            )
        self.model = regression_model_class().from_pretrained(self.model_path, dtype=getattr(torch, dtype))
        self.model = self.model.to(device).eval()
        self.processor = AutoProcessor.from_pretrained(self.model_path)
        self.device = device
        self.max_frames = max_frames
        self.name = f"videoscore({self.model_path})"
        self._cache: OrderedDict[tuple, dict[str, float]] = OrderedDict()
        self._cache_size = cache_size

    def aspects(self, frames: np.ndarray, prompt: str) -> dict[str, float]:
        """Aspect name to score (1-4 scale, unclipped) for ``frames`` (uint8 RGB) and ``prompt``."""
        from PIL import Image

        torch = self._torch
        frames = check_frames(frames)
        key = (frames.shape, hash(frames.tobytes()), prompt)
        if key in self._cache:
            self._cache.move_to_end(key)
            return dict(self._cache[key])
        picked = frames[videoscore_frame_indices(len(frames), self.max_frames)]
        inputs = self.processor(
            text=videoscore_text(prompt, len(picked)), images=[Image.fromarray(f) for f in picked],
            return_tensors="pt",
        )
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.no_grad():
            logits = self.model(**inputs)[0].float().cpu().numpy()
        result = {name: float(v) for name, v in zip(ASPECTS, logits, strict=True)}
        self._cache[key] = result
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return dict(result)


class VideoScoreMetric:
    """One VideoScore aspect as a metric.

    Args:
        model: a :class:`VideoScoreModel` (or any ``aspects(frames, prompt)``).
        kind: ``tva`` (whole video, prompt), ``tc`` (whole video, prompt) or ``tva_subaction``.
    """

    _ASPECT = {"tva": "text-to-video alignment", "tc": "temporal consistency",
               "tva_subaction": "text-to-video alignment"}

    def __init__(self, model, kind: str) -> None:
        if kind not in self._ASPECT:
            raise ValueError(f"kind must be one of {sorted(self._ASPECT)}, got {kind!r}")
        self.model = model
        self.kind = kind
        self.aspect = self._ASPECT[kind]
        name = getattr(model, "name", type(model).__name__)
        where = ("per timeline sub-action window vs its description, mean over sub-actions "
                 "(this project's windowing)" if kind == "tva_subaction" else "whole video vs prompt")
        self.spec = MetricSpec(
            f"videoscore_{kind}", None, "pretrained",
            f"VideoScore {self.aspect} (ReactID Table 4 {'TC' if kind == 'tc' else 'TVA'}) by {name}; {where}",
            is_proxy=False, unit="VideoScore 1-4",
        )

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        frames = check_frames(frames)
        if self.kind != "tva_subaction":
            if not context.prompt.strip():
                return not_computed(self.spec, "sample has no prompt")
            return MetricValue(self.spec, self.model.aspects(frames, context.prompt)[self.aspect], "whole video")
        if not context.events:
            return not_computed(self.spec, "sample has no timeline")
        windows = subaction_windows(len(frames), context.fps, context.events)
        if isinstance(windows, str):
            return not_computed(self.spec, windows)
        scores = [self.model.aspects(frames[w], e.description)[self.aspect]
                  for w, e in zip(windows, context.events, strict=True)]
        return MetricValue(self.spec, float(np.mean(scores)),
                           "per sub-action: " + ", ".join(f"{s:.3f}" for s in scores))
