"""Florence-2 caption-to-phrase grounding: boxes for an entity label (paper App. B.2).

transformers 5 ships Florence-2 natively (``Florence2ForConditionalGeneration``,
``Florence2Processor``); ``model_path`` must be a checkpoint in that format, e.g.
``florence-community/Florence-2-large`` (the original ``microsoft/Florence-2-*`` repos
need ``trust_remote_code`` and are not loaded here).

Florence-2 answers ``<CAPTION_TO_PHRASE_GROUNDING>`` with text such as
``"a man<loc_102><loc_40><loc_530><loc_996>"``: a phrase followed by groups of four location
tokens, each a bin of 1000 along the image width or height. ``parse_phrase_grounding``
reads that text with the rule of Florence-2's own post-processor (a bin maps to its
centre, ``(k + 0.5) * size / 1000``) but keeps sub-pixel floats instead of truncating.

Florence-2 gives no detection score. ``ground`` reports, per box, the geometric mean
probability of its four location tokens under the beam that produced them: a measure of
how sure the decoder was of the coordinates, not a calibrated detector confidence (the
paper's SigLIP post-verification decides whether the box holds the label).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.inputs import Box, check_frame

TASK = "<CAPTION_TO_PHRASE_GROUNDING>"
LOCATION_BINS = 1000
_LOC = re.compile(r"<loc_(\d+)>")
_PHRASE_WITH_BOXES = re.compile(r"([^<]+)((?:<loc_\d+>){4,})")
_MARKUP = ("<s>", "</s>", "<pad>")


@dataclass(frozen=True)
class GroundedBox:
    """One box of a grounding answer.

    Args:
        phrase: the phrase the box belongs to, as Florence-2 wrote it.
        box: (x0, y0, x1, y1) in pixels of the image.
        location_tokens: indices, among all ``<loc_*>`` tokens of the answer, of the four
            that encode this box (to look up their probabilities).
    """

    phrase: str
    box: Box
    location_tokens: tuple[int, int, int, int]


def parse_phrase_grounding(
    text: str, image_size: tuple[int, int], banned_phrases: Iterable[str] = ()
) -> list[GroundedBox]:
    """Boxes of a ``<CAPTION_TO_PHRASE_GROUNDING>`` answer.

    Args:
        text: the decoded answer, special tokens kept (``</s><s>phrase<loc_..>...</s>``).
        image_size: ``(width, height)`` of the image in pixels.
        banned_phrases: phrases whose boxes are dropped (Florence-2's processor config bans
            "the image").

    Returns:
        Boxes in order of appearance. Groups of location tokens that do not form a box with
        positive width and height (``x1 <= x0`` or ``y1 <= y0``) are not boxes and are left
        out; trailing location tokens short of a group of four are ignored, as Florence-2's
        post-processor does.
    """
    width, height = image_size
    banned = {phrase.strip().lower() for phrase in banned_phrases}
    for token in _MARKUP:
        text = text.replace(token, "")
    boxes = []
    for match in _PHRASE_WITH_BOXES.finditer(text):
        phrase = match.group(1).replace("<ground>", "").replace("<obj>", "").strip()
        if not phrase or phrase.lower() in banned:
            continue
        first = len(_LOC.findall(text[: match.start(2)]))
        bins = [int(b) for b in _LOC.findall(match.group(2))]
        for group in range(len(bins) // 4):
            q = bins[4 * group : 4 * group + 4]
            x0, y0, x1, y1 = (
                min(max((q[i] + 0.5) * size / LOCATION_BINS, 0.0), float(size))
                for i, size in enumerate((width, height, width, height))
            )
            if x1 > x0 and y1 > y0:
                start = first + 4 * group
                boxes.append(GroundedBox(phrase, (x0, y0, x1, y1), tuple(range(start, start + 4))))
    return boxes


def location_scores(box: GroundedBox, location_logprobs: Sequence[float]) -> float:
    """Geometric mean probability of a box's four location tokens.

    Args:
        box: a parsed box.
        location_logprobs: log-probability of every ``<loc_*>`` token of the answer, in order.
    """
    picked = [location_logprobs[i] for i in box.location_tokens]
    return float(np.exp(np.mean(picked)))


class Florence2Grounder:
    """Florence-2 boxes for an entity label.

    Args:
        model_path: hub id or directory of a transformers-format Florence-2 checkpoint.
        device: torch device string.
        num_beams: beam width (Florence-2's examples use 3).
        max_new_tokens: generation budget.
    """

    def __init__(
        self, model_path: str | Path, device: str = "cpu", num_beams: int = 3,
        max_new_tokens: int = 1024,
    ) -> None:
        import torch
        from transformers import AutoConfig, AutoProcessor, Florence2ForConditionalGeneration

        self._torch = torch
        self.model_path = str(model_path)
        config = AutoConfig.from_pretrained(self.model_path)
        if config.model_type != "florence2":
            raise BackendLoadError(
                f"{self.model_path} holds a {config.model_type!r} model, expected 'florence2' "
                "(a transformers-format checkpoint such as florence-community/Florence-2-large)"
            )
        self.model = Florence2ForConditionalGeneration.from_pretrained(self.model_path)
        self.model = self.model.to(device).eval()
        self.processor = AutoProcessor.from_pretrained(self.model_path)
        self.banned_phrases = tuple(
            getattr(self.processor.post_processor, "banned_grounding_tokens", ())
        )
        self.device = device
        self.num_beams = num_beams
        # The decoder cannot look past its position table: an answer that never ends must
        # stop there instead of indexing out of range.
        positions = getattr(config.text_config, "max_position_embeddings", max_new_tokens + 1)
        self.max_new_tokens = min(max_new_tokens, positions - 1)
        self.name = f"pretrained:florence-2({self.model_path})"

    def ground(self, frame: np.ndarray, label: str) -> list[tuple[Box, float]]:
        """Boxes of ``label`` in one frame.

        Args:
            frame: uint8 RGB (H, W, 3).
            label: the entity label, e.g. "the man in red".

        Returns:
            ``[(box, score)]``: boxes (x0, y0, x1, y1) in frame pixels, clipped to the frame;
            score in (0, 1], the mean location-token probability (see the module docstring).
        """
        from PIL import Image

        frame = check_frame(frame)
        if not label.strip():
            raise ValueError("ground needs a non-empty label")
        height, width = frame.shape[:2]
        inputs = self.processor(
            text=TASK + label.strip(), images=Image.fromarray(frame), return_tensors="pt"
        )
        text, loc_logprobs = self._generate(inputs)
        boxes = parse_phrase_grounding(text, (width, height), self.banned_phrases)
        return [(b.box, location_scores(b, loc_logprobs)) for b in boxes]

    def _generate(self, inputs) -> tuple[str, list[float]]:
        """Decoded answer (special tokens kept) and the log-probability of each location token."""
        torch = self._torch
        with torch.no_grad():
            out = self.model.generate(
                input_ids=inputs["input_ids"].to(self.device),
                pixel_values=inputs["pixel_values"].to(self.device, self.model.dtype),
                max_new_tokens=self.max_new_tokens,
                num_beams=self.num_beams,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
            transition = self.model.compute_transition_scores(
                out.sequences, out.scores, getattr(out, "beam_indices", None),
                normalize_logits=self.num_beams == 1,
            )
        # transition[0, i] scores sequences[0, i + 1] (the decoder start token has none)
        sequence = out.sequences[0].tolist()
        tokens = self.processor.tokenizer.convert_ids_to_tokens(sequence)
        loc_logprobs = [
            float(transition[0, i - 1])
            for i, token in enumerate(tokens)
            if i > 0 and _LOC.fullmatch(str(token))
        ]
        text = self.processor.tokenizer.decode(sequence, skip_special_tokens=False)
        return text, loc_logprobs
