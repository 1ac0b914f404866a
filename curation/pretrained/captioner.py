"""Qwen2.5-VL captions, subject attributes and fine entity labels.

- ``caption``: the paper's subject-centric recaption (App. B.1): every subject's physical
  appearance and actions, then the background, as one paragraph.
- ``describe_attributes``: DH-FaceVid's attribute annotation (ethnicity, gender, age,
  expression, attire), asked for as one JSON object and parsed by ``parse_attributes``.
- ``fine_label``: the vision-based entity label of App. B.2 that tells a subject apart from
  similar ones ("the man in red"), parsed by ``parse_fine_label``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np

from curation.pretrained.errors import ModelOutputError
from curation.pretrained.qwen_vl import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, QwenVideoChat

ATTRIBUTE_KEYS: tuple[str, ...] = ("ethnicity", "gender", "age", "expression", "attire")

CAPTION_PROMPT = (
    "Describe this video for a subject-driven video generation dataset. For each subject that "
    "appears (a person, an animal or an object), describe its physical appearance (clothing, "
    "colours, hair, build and distinctive features) and what it does over the course of the "
    "video; then describe the background environment. Refer to every subject by a distinct "
    "singular noun phrase. Answer with one paragraph of plain text, without lists or headings."
)

ATTRIBUTE_PROMPT = (
    "Look at {subject} in this video. Answer with one JSON object with exactly these keys: "
    '"ethnicity", "gender", "age", "expression", "attire". Give each value as a short phrase '
    '(for example "East Asian", "female", "about 30", "smiling", "white shirt and black jacket") '
    "and use null for an attribute that cannot be seen. Answer with the JSON object only."
)

FINE_LABEL_PROMPT = (
    "There is a {label} in this video. Give a short noun phrase that tells this {label} apart "
    'from everything else in the video, such as "the man in the red jacket" or "the brown dog '
    'with a collar". Answer with the noun phrase only.'
)

# Names a VLM uses instead of the five attribute keys.
_KEY_ALIASES = {
    "race": "ethnicity",
    "ethnic group": "ethnicity",
    "sex": "gender",
    "age group": "age",
    "age range": "age",
    "emotion": "expression",
    "facial expression": "expression",
    "clothing": "attire",
    "clothes": "attire",
    "outfit": "attire",
}
_MISSING_VALUES = {"", "null", "none", "unknown", "n/a", "na", "not visible", "unclear"}
_FENCE = re.compile(r"```(?:json|python)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class VlmCaptioner:
    """Qwen2.5-VL captioner and attribute / fine-label describer.

    Args:
        model_path: hub id or directory of a Qwen2.5-VL checkpoint, or a loaded
            ``QwenVideoChat`` to share its weights with other backends.
        device: torch device string.
        max_new_tokens: generation budget per answer.
        num_frames: frames sampled per clip.
        dtype, min_pixels, max_pixels: see ``QwenVideoChat``.
    """

    def __init__(
        self,
        model_path: str | Path | QwenVideoChat,
        device: str = "cpu",
        max_new_tokens: int = 256,
        num_frames: int = 8,
        dtype: str = "auto",
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.chat = QwenVideoChat.reuse_or_load(
            model_path, device, dtype, num_frames, min_pixels=min_pixels, max_pixels=max_pixels
        )
        self.max_new_tokens = max_new_tokens
        self.name = self.chat.name

    def caption(self, frames: np.ndarray, fps: float | None = None) -> str:
        """One subject-centric paragraph for a clip.

        Args:
            frames: uint8 RGB (N, H, W, 3).
            fps: the clip's frame rate, for Qwen2.5-VL's time encoding (optional).

        Raises:
            ModelOutputError: the model answered with nothing.
        """
        text = self.chat.ask(frames, CAPTION_PROMPT, fps, self.max_new_tokens)
        paragraph = " ".join(text.split())
        if not paragraph:
            raise ModelOutputError(f"{self.name} returned an empty caption")
        return paragraph

    def describe_attributes(
        self, frames: np.ndarray, subject: str = "the main person"
    ) -> dict[str, str | None]:
        """DH-FaceVid attributes of one person.

        Args:
            frames: uint8 RGB (N, H, W, 3), e.g. the face-and-torso crop of the clip.
            subject: how the prompt refers to the person.

        Returns:
            ``{ethnicity, gender, age, expression, attire}``, ``None`` where not visible.

        Raises:
            ModelOutputError: the answer is not a JSON object with the five keys; the
                message quotes the raw answer.
        """
        question = ATTRIBUTE_PROMPT.format(subject=subject)
        return parse_attributes(self.chat.ask(frames, question, None, self.max_new_tokens))

    def fine_label(self, frames: np.ndarray, label: str) -> str:
        """A distinguishing noun phrase for the subject called ``label`` ("the man in red").

        Raises:
            ModelOutputError: the answer holds no phrase.
        """
        if not label.strip():
            raise ValueError("fine_label needs a non-empty entity label")
        question = FINE_LABEL_PROMPT.format(label=label.strip())
        return parse_fine_label(self.chat.ask(frames, question, None, self.max_new_tokens))


def parse_attributes(text: str) -> dict[str, str | None]:
    """Parse a VLM's attribute answer into the five DH-FaceVid attributes.

    Accepts a JSON object (or a Python-literal dict) anywhere in the text, inside a code
    fence or not; keys are matched case-insensitively, with common synonyms ("race",
    "emotion", "clothing"); ``null`` / "unknown" / "" become ``None``; numbers become text
    and lists are joined with ", ".

    Raises:
        ModelOutputError: no object found, a key missing, or a value that is an object;
            the message quotes ``text``.
    """
    mapping = _first_mapping(text)
    if mapping is None:
        raise ModelOutputError(f"no JSON object with attributes in the answer {text!r}")
    found: dict[str, str | None] = {}
    for raw_key, raw_value in mapping.items():
        key = " ".join(str(raw_key).strip().lower().replace("_", " ").split())
        key = _KEY_ALIASES.get(key, key)
        if key in ATTRIBUTE_KEYS:
            found[key] = _attribute_value(raw_value, key, text)
    missing = [key for key in ATTRIBUTE_KEYS if key not in found]
    if missing:
        raise ModelOutputError(f"attributes {missing} missing from the answer {text!r}")
    return {key: found[key] for key in ATTRIBUTE_KEYS}


def parse_fine_label(text: str) -> str:
    """The noun phrase of a fine-label answer: first non-empty line, quotes and final period
    removed, whitespace collapsed.

    Raises:
        ModelOutputError: the answer holds no phrase.
    """
    for line in text.splitlines():
        phrase = " ".join(line.split()).strip("\"'`*").rstrip(".").strip()
        if phrase.lower().startswith(("answer:", "label:")):
            phrase = phrase.split(":", 1)[1].strip().strip("\"'`")
        if phrase:
            return phrase
    raise ModelOutputError(f"no noun phrase in the fine-label answer {text!r}")


def _first_mapping(text: str) -> dict | None:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for start in (i for i, ch in enumerate(candidate) if ch == "{"):
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                value = _literal_dict(candidate, start)
            if isinstance(value, dict):
                return value
    return None


def _literal_dict(text: str, start: int) -> dict | None:
    """A Python-literal dict (single quotes, None) starting at ``text[start]``, if any."""
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            try:
                value = ast.literal_eval(text[start : end + 1])
            except (ValueError, SyntaxError):
                return None
            return value if isinstance(value, dict) else None
    return None


def _attribute_value(value: object, key: str, text: str) -> str | None:
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        parts = [str(v).strip() for v in value if v is not None and str(v).strip()]
        value = ", ".join(parts)
    if isinstance(value, dict):
        raise ModelOutputError(f"attribute {key!r} is an object in the answer {text!r}")
    phrase = " ".join(str(value).split())
    return None if phrase.lower() in _MISSING_VALUES else phrase
