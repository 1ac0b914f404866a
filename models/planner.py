"""Timeline planners: a plain prompt to a timeline of sub-actions.

The paper converts prompts to timelines with an LLM when needed (Sec. 4.1, App. E.3).

- ``SequencingWordPlanner`` (embedded): splits the prompt at sequencing words ("then",
  "after that", "finally", ...) and at commas or "and" that start a new verb phrase,
  then gives each sub-action a share of the duration proportional to its length in
  words (a longer description usually narrates a longer action), on a 0.1 s grid.
- ``InstructionModelPlanner`` (pretrained): asks a local instruction-tuned causal LM
  (``AutoModelForCausalLM`` / ``AutoTokenizer`` from a hub id or directory) to write the
  challenge form ``"0-2s: ...; 2-5s: ..."`` and parses the answer.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from core.timeline import DEFAULT_SUBJECT, SubAction, Timeline, TimelineError, parse_timeline_string


class TimelinePlanner(Protocol):
    def plan(self, prompt: str, duration: float) -> Timeline:
        """A timeline spanning ``[0, duration]`` seconds for ``prompt``."""


class PlannerOutputError(TimelineError):
    """The instruction model's answer contains no usable timeline; carries the raw text."""

    def __init__(self, message: str, raw_output: str) -> None:
        super().__init__(f"{message}; model output: {raw_output!r}")
        self.raw_output = raw_output


# Phrases that open the next step of a sequence. Longest first so "and then" wins over "then".
_SEQUENCE_MARKERS = (
    "and after that",
    "and afterwards",
    "and then",
    "after that",
    "afterwards",
    "and finally",
    "finally",
    "followed by",
    "before",
    "next",
    "then",
    "later",
    "eventually",
)
_MARKER_PATTERN = re.compile(
    r"\s*[,;.]?\s*\b(?:" + "|".join(re.escape(m) for m in _SEQUENCE_MARKERS) + r")\b\s*,?\s*",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"(\s*(?:,\s*(?:and\s+)?|\s+and\s+|;\s*|\.\s+))", re.IGNORECASE)
# Words that begin a verb phrase in prompt English: third-person -s verbs are caught by the
# suffix rule below; these are frequent irregular or -s-less starts.
_VERB_STARTS = frozenset(
    "is are was were has have does do goes gets puts takes makes turns looks stands sits "
    "begins starts stops keeps lifts raises waves smiles nods walks runs jumps".split()
)
_NON_VERBS_ENDING_IN_S = frozenset(
    "his its this was as is us glasses pants jeans clothes shoes".split()
)


class SequencingWordPlanner:
    """Split a prompt into sub-actions at sequencing words and verb-led clauses.

    Args:
        subject: label of the subject performing every action.
        time_step: boundaries are rounded to this many seconds.
    """

    def __init__(self, subject: str = DEFAULT_SUBJECT, time_step: float = 0.1) -> None:
        if time_step <= 0:
            raise ValueError(f"time_step must be positive, got {time_step}")
        self.subject, self.time_step = subject, time_step

    def split_actions(self, prompt: str) -> list[str]:
        """Sub-action descriptions in order (the whole prompt when nothing splits it)."""
        pieces = []
        for chunk in _MARKER_PATTERN.split(prompt.strip()):
            pieces.extend(self._split_clauses(chunk))
        actions = [p.strip(" ,;.") for p in pieces if p.strip(" ,;.")]
        return actions or [prompt.strip()]

    def plan(self, prompt: str, duration: float) -> Timeline:
        if not prompt.strip():
            raise TimelineError("cannot plan a timeline for an empty prompt")
        if duration <= 0:
            raise TimelineError(f"duration must be positive, got {duration}")
        descriptions = self.split_actions(prompt)
        steps = round(duration / self.time_step)
        if steps < len(descriptions):
            descriptions = [" then ".join(descriptions)]
        bounds = _proportional_bounds([len(d.split()) for d in descriptions], steps)
        actions = tuple(
            SubAction(
                lo * self.time_step,
                hi * self.time_step if hi < steps else duration,
                text,
                self.subject,
            )
            for lo, hi, text in zip(bounds[:-1], bounds[1:], descriptions, strict=True)
        )
        return Timeline(prompt.strip(), actions, duration=duration)

    @staticmethod
    def _split_clauses(chunk: str) -> list[str]:
        # Split keeping the separators, so a clause that does not start a verb phrase is
        # glued back exactly as written ("a red dress and black shoes").
        parts = _CLAUSE_BREAK.split(chunk)
        merged = [parts[0]]
        for separator, part in zip(parts[1::2], parts[2::2], strict=True):
            if _starts_with_verb(part):
                merged.append(part)
            else:
                merged[-1] = f"{merged[-1]}{separator}{part}"
        return merged


def _proportional_bounds(weights: list[int], steps: int) -> list[int]:
    """Boundaries ``0 = b_0 < b_1 < ... < b_n = steps`` with ``b_i`` near the cumulative share
    of the weights; every interval keeps at least one step (needs ``steps >= n``)."""
    total, acc, bounds = sum(weights), 0, [0]
    for weight in weights[:-1]:
        acc += weight
        bounds.append(max(round(steps * acc / total), bounds[-1] + 1))
    bounds.append(steps)
    for i in range(len(bounds) - 2, 0, -1):
        bounds[i] = min(bounds[i], bounds[i + 1] - 1)
    return bounds


def _starts_with_verb(text: str) -> bool:
    words = text.strip().lower().split()
    if not words:
        return False
    first = words[0]
    if first in _VERB_STARTS:
        return True
    return first.endswith(("s", "ing")) and len(first) > 3 and first not in _NON_VERBS_ENDING_IN_S


_INSTRUCTION = (
    "Split the video description into a timeline of consecutive sub-actions of one subject. "
    "The video lasts {duration:g} seconds. Answer only with segments in the form "
    "'START-ENDs: action' separated by semicolons, covering 0 to {duration:g} seconds.\n"
    "Description: {prompt}"
)
_SEGMENT_IN_TEXT = re.compile(r"\d+(?:\.\d+)?\s*s?\s*[-–—~]\s*\d+(?:\.\d+)?\s*s?\s*:\s*[^;\n]+")


def parse_planner_output(
    text: str, *, prompt: str, duration: float, subject: str = DEFAULT_SUBJECT
) -> Timeline:
    """Extract ``START-ENDs: action`` segments from free model text.

    When the plan overshoots ``duration`` all times are scaled by ``duration / last_end``
    (instruction models often round a 5.06 s clip to 6 s); a plan that ends early is kept.

    Raises:
        PlannerOutputError: no segment, or the segments do not form a valid timeline.
    """
    segments = _SEGMENT_IN_TEXT.findall(text)
    if not segments:
        raise PlannerOutputError("no 'START-ENDs: action' segment found", text)
    try:
        draft = parse_timeline_string(
            "; ".join(s.strip() for s in segments), global_prompt=prompt, subject=subject
        )
    except TimelineError as error:
        raise PlannerOutputError(str(error), text) from None
    scale = duration / draft.duration if draft.duration > duration else 1.0
    actions = tuple(
        SubAction(a.start * scale, a.end * scale, a.description, subject) for a in draft.actions
    )
    return Timeline(prompt, actions, duration=duration)


class InstructionModelPlanner:
    """Plan with a local instruction-tuned causal LM.

    Args:
        model_path: hub id or directory loadable by ``AutoModelForCausalLM``/``AutoTokenizer``.
        max_new_tokens: generation budget.
        subject: label of the subject performing every action.
        device, dtype: where and how to load the model.
    """

    def __init__(
        self,
        model_path: str,
        *,
        max_new_tokens: int = 160,
        subject: str = DEFAULT_SUBJECT,
        device: str = "cpu",
        dtype: Any = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
        self.max_new_tokens, self.subject, self.device = max_new_tokens, subject, device

    def build_prompt(self, prompt: str, duration: float) -> str:
        """The instruction, wrapped in the tokenizer's chat template when it has one."""
        instruction = _INSTRUCTION.format(prompt=prompt.strip(), duration=duration)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": instruction}],
                tokenize=False,
                add_generation_prompt=True,
            )
        return instruction + "\nTimeline:"

    def plan(self, prompt: str, duration: float) -> Timeline:
        import torch

        text = self.build_prompt(prompt, duration)
        inputs = self.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(self.device)
        with torch.no_grad():
            generated = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        answer = self.tokenizer.decode(
            generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )
        return parse_planner_output(
            answer, prompt=prompt.strip(), duration=duration, subject=self.subject
        )
