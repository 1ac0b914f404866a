"""OpenS2V NaturalScore: an MLLM rates how real the video looks, 1 (AI-generated) to 5 (real).

Definition (``eval/get_naturalscore.py`` and ``eval/merge_result.py`` of OpenS2V-Nexus v1.1):

1. Frames: ``interval = max(T // 16, 1)``; frames ``0, interval, ..., 15 * interval`` that exist
   (OpenCV seeks; a frame past the end is not read), each resized to a long side of 512 px
   (``INTER_AREA``, the short side truncated to int) and JPEG-encoded by OpenCV.
2. One chat-completions request to ``gpt-4o-2024-11-20``: a user message with the 16 frames as
   ``data:image/jpeg;base64`` image URLs followed by :data:`PROMPT` (the script's text), no
   other parameter (default temperature). The reply, stripped, is the run's score.
3. Three runs (``naturalscore_1..3.json``); the merge script averages ``float(reply)`` of the
   runs present; normalised ``(clamp(x, 1, 5) - 1) / 4``.

A reply that ``float()`` cannot read (the merge script would stop there) is recorded in the
note with the raw text and gives no number; the value is the mean of the runs that gave one,
and None when none did. A request that fails after its retries is recorded the same way.

Raters:

* :class:`OpenAIChatRater` — any OpenAI-compatible ``/chat/completions`` endpoint. The API key
  comes only from the environment variable ``OPENAI_API_KEY``; it is read per request, never
  stored, printed or put in an error message. Only GPT-4o gives the benchmark's metric
  (``natural``); another model through the same code is ``natural_api_proxy``.
* :class:`QwenNaturalRater` — a local Qwen2.5-VL through
  :class:`curation.pretrained.qwen_vl.QwenVideoChat` (greedy, so one run): the proxy
  ``natural_qwen_proxy``.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from evaluation.errors import MetricUnavailableError
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, check_frames, not_computed

NUM_FRAMES = 16
LONG_SIDE = 512
RUNS = 3
BENCHMARK_MODEL = "gpt-4o-2024-11-20"
API_KEY_ENV = "OPENAI_API_KEY"
_GPT4O = re.compile(r"^gpt-4o(-\d{4}-\d{2}-\d{2})?$")

# The rating prompt of get_naturalscore.py, verbatim: it defines the metric.
PROMPT = """
Your task is to determine how realistic the given video clip appears, based on 16 extracted frames. Consider the following aspects in your evaluation:

- **Common sense consistency**: Are the objects, people, and interactions logically coherent in the context of the video?
- **Physical plausibility**: Do lighting, shadows, motion, and reflections obey the laws of physics? Are the objects in motion consistent with real-world physics?
- **Naturalness**: Does the visual quality (textures, details, proportions, etc.) resemble what we would expect in real life? Is there any unnatural visual distortion?
- **AI generation artifacts**: Are there signs of unnatural blurring, morphing, glitches, distortions, or inconsistencies across frames? 

**If the video contains humans**, pay special attention to:
- Are the facial features realistic and anatomically correct (e.g., eyes, mouth, and nose proportions)?
- Do the body parts appear proportionate and natural in motion (e.g., arm and leg movements, hand gestures)?

If **no humans** are present in the video, you can focus on evaluating the realism of other visual aspects like object consistency, motion fluidity, and environmental plausibility without needing to specifically assess human-related elements.

Output a score from 1 to 5 based on the criteria below, followed by an explanation of the reasoning behind your score:

- **1 — Definitely AI-Generated**: Clear and frequent artifacts (e.g., blurry faces or objects, unnatural movements, inconsistent lighting), distorted shapes, implausible physics (e.g., impossible movements, lighting issues), and severe inconsistencies. Violates common sense or real-world logic. Faces and bodies may be unrealistic or distorted if humans are present.
- **2 — Likely AI-Generated**: Noticeable AI generation cues such as inconsistent anatomy, fluctuating object textures, or mild physical implausibility (e.g., unnatural hand positions or eye movements). Faces and bodies may appear unnatural or inconsistent if humans are present. Still clearly synthetic upon inspection.
- **3 — Uncertain / Borderline**: Mixed indicators — the video may appear mostly natural but contains subtle flaws or small anomalies that raise suspicion. Faces and bodies might show mild inconsistencies (e.g., slight distortion in facial features or body parts) if humans are present. Hard to determine definitively.
- **4 — Likely Real**: Mostly natural and physically plausible, with only minor and rare irregularities that might be explainable (e.g., slight compression, mild lighting inconsistencies). Faces and body parts are mostly natural, with only minor imperfections, if humans are present.
- **5 — Definitely Real**: Fully consistent with real-world physics, common sense, and appearance. No visible artifacts or signs of AI generation. Faces and body parts appear fully realistic, without any visible distortions or unnatural movements, if humans are present.

Please only return the score (1-5), no additional explanation.
"""


class RatingError(Exception):
    """A run gave no number: the reply is not one, or the request failed."""


def natural_frame_indices(total: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Indices the script reads: ``i * max(total // num_frames, 1)`` below ``total``."""
    if total <= 0:
        raise ValueError(f"need at least one frame, got {total}")
    interval = max(total // num_frames, 1)
    return np.asarray([i * interval for i in range(num_frames) if i * interval < total], np.int64)


def resize_long_side(frame: np.ndarray, target: int = LONG_SIDE) -> np.ndarray:
    """Resize so the long side is ``target`` px, the other truncated to int (``INTER_AREA``)."""
    import cv2

    height, width = frame.shape[:2]
    if height >= width:
        size = (int(width * target / height), target)
    else:
        size = (target, int(height * target / width))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def jpeg_base64(frame_rgb: np.ndarray) -> str:
    """OpenCV JPEG (default quality) of an RGB frame, base64 text."""
    import cv2

    ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(frame_rgb[..., ::-1]))
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    return base64.b64encode(buffer.tobytes()).decode("ascii")


def parse_rating(reply: str) -> float:
    """The run's score as the merge script reads it: ``float(reply.strip())``.

    Raises:
        RatingError: the reply is not a finite number; the message quotes it.
    """
    try:
        value = float(reply.strip())
    except ValueError:
        raise RatingError(f"reply is not a number: {_quote(reply)}") from None
    if not math.isfinite(value):
        raise RatingError(f"reply is not a finite number: {_quote(reply)}")
    return value


def chat_request_body(frames_rgb: np.ndarray, model: str, prompt: str = PROMPT) -> dict[str, Any]:
    """The request of ``call_gpt``: 16 JPEG data URLs, then the prompt, in one user message."""
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{jpeg_base64(resize_long_side(f))}"}}
        for f in frames_rgb
    ]
    content.append({"type": "text", "text": prompt})
    return {"model": model, "stream": False, "messages": [{"role": "user", "content": content}]}


def _quote(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class Rater(Protocol):
    """Rates one clip; returns the raw reply text."""

    name: str

    def rate(self, frames: np.ndarray, fps: float) -> str:
        """``frames``: the sampled uint8 RGB frames; ``fps``: their effective frame rate."""
        ...


class OpenAIChatRater:
    """An OpenAI-compatible chat-completions endpoint (GPT-4o for the benchmark).

    Args:
        model: model name sent with each request.
        base_url: API root; ``/chat/completions`` is appended.
        timeout: seconds per request.
        attempts: tries per run (the script retries 5 times, waiting 2-10 s, exponentially).
        backoff_min, backoff_max: the wait before a retry, doubling from the minimum.

    Raises:
        MetricUnavailableError: ``OPENAI_API_KEY`` is not set.
    """

    def __init__(
        self,
        model: str = BENCHMARK_MODEL,
        base_url: str = "https://api.openai.com/v1",
        timeout: float = 120.0,
        attempts: int = 5,
        backoff_min: float = 2.0,
        backoff_max: float = 10.0,
    ) -> None:
        if not os.environ.get(API_KEY_ENV):
            raise MetricUnavailableError(
                f"NaturalScore through a chat API needs the API key in the environment variable {API_KEY_ENV}"
            )
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.name = f"chat-api:{model}"

    def __repr__(self) -> str:
        return f"OpenAIChatRater(model={self.model!r}, url={self.url!r})"

    def rate(self, frames: np.ndarray, fps: float) -> str:
        body = json.dumps(chat_request_body(frames, self.model)).encode()
        error = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(self.backoff_max, self.backoff_min * 2 ** (attempt - 1)))
            try:
                return self._post(body)
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} from {self.url}"
                if exc.code != 429 and exc.code < 500:
                    break  # a client error does not go away by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                error = f"request to {self.url} failed: {getattr(exc, 'reason', exc)}"
        raise RatingError(f"{error} (after {attempt + 1} attempts)")

    def _post(self, body: bytes) -> str:
        key = os.environ.get(API_KEY_ENV)
        if not key:
            raise RatingError(f"{API_KEY_ENV} is no longer set")
        request = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            payload = response.read()
        try:
            return json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RatingError(f"response is no chat completion: {_quote(payload.decode(errors='replace'))}") from exc


class QwenNaturalRater:
    """Qwen2.5-VL asked the NaturalScore prompt about the sampled frames (a proxy rater).

    Args:
        model_path: hub id / directory of a Qwen2.5-VL checkpoint, or a loaded ``QwenVideoChat``.
        device, dtype, min_pixels, max_pixels: see ``QwenVideoChat``.
        max_new_tokens: generation budget (the answer should be one number).
    """

    def __init__(
        self,
        model_path: str | Path | Any,
        device: str = "cpu",
        dtype: str = "auto",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        max_new_tokens: int = 16,
    ) -> None:
        from curation.pretrained.qwen_vl import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, QwenVideoChat

        self.chat = QwenVideoChat.reuse_or_load(
            model_path, device, dtype, NUM_FRAMES,
            min_pixels=min_pixels or DEFAULT_MIN_PIXELS, max_pixels=max_pixels or DEFAULT_MAX_PIXELS,
        )
        self.max_new_tokens = max_new_tokens
        self.name = self.chat.name

    def rate(self, frames: np.ndarray, fps: float) -> str:
        return self.chat.ask(frames, PROMPT, fps, self.max_new_tokens)


def api_spec(model: str) -> MetricSpec:
    """``natural`` for GPT-4o, else ``natural_api_proxy`` naming the model."""
    if _GPT4O.match(model):
        snapshot = "" if model == BENCHMARK_MODEL else f"; the script's snapshot is {BENCHMARK_MODEL}"
        return MetricSpec(
            "natural", "natural", "pretrained",
            f"OpenS2V-Eval v1.1 get_naturalscore.py ({model} rates 1-5 from 16 frames, mean of runs{snapshot})",
            is_proxy=False, unit="rating 1-5",
        )
    return MetricSpec(
        "natural_api_proxy", "natural", "pretrained",
        f"NaturalScore prompt and frames of OpenS2V rated by {model} through a chat API instead of GPT-4o",
        is_proxy=True, unit="rating 1-5",
    )


def qwen_spec(model_name: str) -> MetricSpec:
    return MetricSpec(
        "natural_qwen_proxy", "natural", "pretrained",
        f"NaturalScore prompt and frames of OpenS2V rated by {model_name} (greedy) instead of GPT-4o",
        is_proxy=True, unit="rating 1-5",
    )


class NaturalScore:
    """NaturalScore with a given rater (see the module docstring).

    Args:
        rater: returns the reply text for the sampled frames.
        spec: the metric's identity (:func:`api_spec` or :func:`qwen_spec`).
        runs: ratings averaged (3 in OpenS2V).
        num_frames: frames sent (16 in OpenS2V).
    """

    def __init__(self, rater: Rater, spec: MetricSpec, runs: int = RUNS, num_frames: int = NUM_FRAMES) -> None:
        if runs < 1:
            raise ValueError(f"runs must be >= 1, got {runs}")
        self.rater = rater
        self.spec = spec
        self.runs = runs
        self.num_frames = num_frames

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        frames = check_frames(frames)
        indices = natural_frame_indices(len(frames), self.num_frames)
        step = int(indices[1] - indices[0]) if len(indices) > 1 else 1
        scores, failures = [], []
        for run in range(1, self.runs + 1):
            try:
                scores.append(parse_rating(self.rater.rate(frames[indices], context.fps / step)))
            except RatingError as exc:
                failures.append(f"run {run}: {exc}")
        rater = getattr(self.rater, "name", type(self.rater).__name__)
        if not scores:
            return not_computed(self.spec, f"no run of {rater} gave a number; " + "; ".join(failures))
        note = f"mean of {len(scores)} of {self.runs} runs by {rater}: {', '.join(f'{s:g}' for s in scores)}"
        if failures:
            note += "; no number from " + "; ".join(failures)
        return MetricValue(self.spec, float(np.mean(scores)), note)


def build_api(model: str = BENCHMARK_MODEL, *, require_gpt4o: bool, runs: int = RUNS, **options: Any) -> NaturalScore:
    """NaturalScore through a chat API; ``require_gpt4o`` refuses another model."""
    if require_gpt4o and not _GPT4O.match(model):
        raise ValueError(
            f"'natural' is OpenS2V's NaturalScore, rated by GPT-4o; {model!r} is not GPT-4o "
            "(list 'natural_api_proxy' to rate with another model)"
        )
    return NaturalScore(OpenAIChatRater(model, **options), api_spec(model), runs=runs)


def build_qwen(model_path: str | Path | Any, runs: int = 1, **options: Any) -> NaturalScore:
    """NaturalScore rated by a local Qwen2.5-VL (a proxy)."""
    rater = QwenNaturalRater(model_path, **options)
    return NaturalScore(rater, qwen_spec(rater.name), runs=runs)

