"""Timeline annotation: VLM proposals, video-text alignment, per-sub-action selection.

The paper (App. B.2) asks Qwen2.5-VL-72B for the sub-actions of a clip with timestamps,
re-localises each sub-action caption with two temporal grounding models (UniMD, TFVTG),
scores every candidate (timestamps + caption) by the cosine similarity of InternVideo2's
video and text embeddings of the candidate's segment, and keeps the best candidate per
sub-action. Here:

- ``VlmTimelineProposer`` prompts Qwen2.5-VL for the challenge string form
  ``"0-2s: [..]; 2-5s: [..]"`` and parses it with ``core.timeline.parse_timeline_string``;
- ``ClipAlignmentScorer`` is the alignment backend: the mean cosine similarity of CLIP
  frame embeddings and the CLIP text embedding. InternVideo2 is not in transformers;
  CLIP is the stated stand-in (its table values say ``pretrained:clip(...)``);
- ``alignment_scores`` scores candidate sets on the frames of each candidate's segment;
- ``select_best_candidates`` is the paper's ensemble rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.timeline import DEFAULT_SUBJECT, SubAction, Timeline, TimelineError, parse_timeline_string
from curation.pretrained.errors import BackendLoadError, ModelOutputError
from curation.pretrained.inputs import check_frames
from curation.pretrained.qwen_vl import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, QwenVideoChat

TIMELINE_PROMPT = (
    "This video is {duration:.1f} seconds long. Identify the sub-actions of the main subject, "
    "starting a new sub-action at every meaningful change of action, and give each one's start "
    "and end time in seconds. Answer on one line in exactly this form: "
    '"0-2s: [first sub-action]; 2-5s: [second sub-action]", with times in order, without '
    "overlaps, between 0 and {duration:.1f}. Answer with the timeline only."
)
_NUM = r"\d+(?:\.\d+)?"
_UNIT = r"\s*(?:s|sec|secs|seconds?)?\s*"
_SEGMENT = re.compile(
    rf"({_NUM}){_UNIT}[-–—~]\s*({_NUM}){_UNIT}:\s*(\[[^\]]*\]|[^;\n]*)", re.IGNORECASE
)


def parse_timeline_answer(
    text: str,
    duration_s: float,
    *,
    global_prompt: str = "",
    subject: str = DEFAULT_SUBJECT,
) -> Timeline:
    """Timeline from a VLM answer in the challenge form, wherever it sits in the text.

    Segments ``START-ENDs: description`` are collected from the answer (prose around them
    is ignored) and handed to ``parse_timeline_string``. A model's estimate past the end of
    the clip is clipped to ``duration_s``; a segment that starts at or after it is dropped.

    Raises:
        ModelOutputError: no segment, or segments that do not form a valid timeline
            (reversed, unsorted, overlapping); the message quotes ``text``.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be positive, got {duration_s!r}")
    pieces = []
    for match in _SEGMENT.finditer(text):
        start, end = float(match.group(1)), min(float(match.group(2)), duration_s)
        description = match.group(3).strip()
        if start < duration_s and description not in ("", "[]"):
            pieces.append(f"{start:g}-{end:g}s: {description}")
    if not pieces:
        raise ModelOutputError(f"no 'START-ENDs: description' segment in the answer {text!r}")
    try:
        return parse_timeline_string(
            "; ".join(pieces), global_prompt=global_prompt, duration=duration_s, subject=subject
        )
    except TimelineError as error:
        raise ModelOutputError(f"answer {text!r} is no valid timeline: {error}") from error


class VlmTimelineProposer:
    """Qwen2.5-VL sub-action proposals with timestamps.

    Args:
        model_path: hub id or directory of a Qwen2.5-VL checkpoint, or a loaded
            ``QwenVideoChat`` (e.g. the captioner's ``chat``) to share its weights.
        device: torch device string.
        max_new_tokens: generation budget.
        num_frames: frames sampled per clip (more frames, finer timestamps).
        dtype, min_pixels, max_pixels: see ``QwenVideoChat``.
    """

    def __init__(
        self,
        model_path: str | Path | QwenVideoChat,
        device: str = "cpu",
        max_new_tokens: int = 256,
        num_frames: int = 16,
        dtype: str = "auto",
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.chat = QwenVideoChat.reuse_or_load(
            model_path, device, dtype, num_frames, min_pixels=min_pixels, max_pixels=max_pixels
        )
        self.max_new_tokens = max_new_tokens
        self.name = self.chat.name

    def propose(
        self,
        frames: np.ndarray,
        fps: float,
        duration_s: float,
        *,
        global_prompt: str = "",
        subject: str = DEFAULT_SUBJECT,
    ) -> Timeline:
        """The clip's sub-actions as a ``Timeline`` of duration ``duration_s``.

        Args:
            frames: uint8 RGB (N, H, W, 3), the whole clip.
            fps: its frame rate (gives Qwen2.5-VL the frames' timestamps).
            duration_s: its length in seconds.
            global_prompt, subject: carried into the timeline.

        Raises:
            ModelOutputError: the answer is no timeline (see ``parse_timeline_answer``).
        """
        question = TIMELINE_PROMPT.format(duration=duration_s)
        answer = self.chat.ask(frames, question, fps, self.max_new_tokens)
        return parse_timeline_answer(
            answer, duration_s, global_prompt=global_prompt, subject=subject
        )


class ClipAlignmentScorer:
    """Video-text alignment: mean cosine of CLIP frame embeddings with the text embedding.

    Args:
        model_path: hub id or directory of a CLIP checkpoint (``openai/clip-vit-large-patch14``).
        device: torch device string.
        num_frames: frames sampled uniformly from the given segment.
    """

    def __init__(self, model_path: str | Path, device: str = "cpu", num_frames: int = 8) -> None:
        import torch
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, CLIPModel

        self._torch = torch
        self.model_path = str(model_path)
        config = AutoConfig.from_pretrained(self.model_path)
        if config.model_type != "clip":
            raise BackendLoadError(
                f"{self.model_path} holds a {config.model_type!r} model, expected 'clip'"
            )
        self.model = CLIPModel.from_pretrained(self.model_path).to(device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.image_processor = AutoImageProcessor.from_pretrained(self.model_path)
        self.max_length = int(config.text_config.max_position_embeddings)
        self.device, self.num_frames = device, num_frames
        self.name = f"pretrained:clip({self.model_path})"

    def score(self, frames: np.ndarray, text: str) -> float:
        """Mean over sampled frames of cos(frame embedding, text embedding), in [-1, 1].

        Args:
            frames: uint8 RGB (N, H, W, 3), the segment to score.
            text: the caption.
        """
        from PIL import Image

        torch = self._torch
        frames = check_frames(frames)
        if not text.strip():
            raise ValueError("score needs a non-empty text")
        count = min(len(frames), self.num_frames)
        picked = frames[np.round(np.linspace(0, len(frames) - 1, count)).astype(int)]
        tokens = self.tokenizer(
            [text], truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        pixels = self.image_processor(
            images=[Image.fromarray(f) for f in picked], return_tensors="pt"
        )["pixel_values"]
        with torch.no_grad():
            text_embeds = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device),
            ).pooler_output
            image_embeds = self.model.get_image_features(
                pixel_values=pixels.to(self.device, self.model.dtype)
            ).pooler_output
            text_embeds = torch.nn.functional.normalize(text_embeds.float(), dim=-1)  # (1, D)
            image_embeds = torch.nn.functional.normalize(image_embeds.float(), dim=-1)  # (F, D)
        return float((image_embeds @ text_embeds.T).mean())


def alignment_scores(
    scorer: ClipAlignmentScorer,
    frames: np.ndarray,
    fps: float,
    candidates: Sequence[Sequence[SubAction]],
) -> list[list[float]]:
    """Alignment score of every candidate on the frames of its own segment.

    Args:
        scorer: any object with ``score(frames, text) -> float``.
        frames: uint8 RGB (N, H, W, 3), the whole clip.
        fps: its frame rate.
        candidates: per sub-action, its candidate annotations (e.g. from the VLM and from
            temporal grounding models).

    Returns:
        Scores with the nesting of ``candidates``.
    """
    frames = check_frames(frames)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    scores = []
    for index, options in enumerate(candidates):
        row = []
        for option in options:
            if option.start * fps >= len(frames):
                raise ValueError(
                    f"sub-action {index} candidate {option.start:g}-{option.end:g}s starts after "
                    f"the clip's {len(frames) / fps:g}s"
                )
            first = int(option.start * fps)
            last = max(first + 1, min(int(np.ceil(option.end * fps)), len(frames)))
            row.append(scorer.score(frames[first:last], option.description))
        scores.append(row)
    return scores


def select_best_candidates(
    candidates: Sequence[Sequence[SubAction]], scores: Sequence[Sequence[float]]
) -> list[SubAction]:
    """Per sub-action, the candidate with the highest alignment score (paper App. B.2).

    Args:
        candidates: per sub-action, its candidates (at least one each).
        scores: the same nesting, one finite score per candidate.

    Returns:
        One chosen candidate per sub-action, in the order of ``candidates``; a tie keeps
        the earlier candidate (list the VLM's own proposal first).

    Raises:
        ValueError: the nestings differ, a sub-action has no candidate, or a score is not
            finite.
    """
    if len(candidates) != len(scores):
        raise ValueError(f"{len(candidates)} sub-actions but {len(scores)} score rows")
    chosen = []
    for index, (options, row) in enumerate(zip(candidates, scores, strict=True)):
        values = np.asarray(row, np.float64)
        if len(options) == 0 or values.shape != (len(options),):
            raise ValueError(
                f"sub-action {index}: {len(options)} candidates but scores {list(row)!r}"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"sub-action {index}: scores {list(row)!r} are not all finite")
        chosen.append(options[int(np.argmax(values))])
    return chosen
