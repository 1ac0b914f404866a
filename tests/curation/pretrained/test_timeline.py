"""Timeline proposals (Qwen2.5-VL), CLIP alignment and the ensemble selection rule."""

import numpy as np
import pytest

from core.timeline import SubAction
from curation.pretrained.errors import BackendLoadError, ModelOutputError
from curation.pretrained.timeline import (
    ClipAlignmentScorer,
    VlmTimelineProposer,
    alignment_scores,
    parse_timeline_answer,
    select_best_candidates,
)


def _spans(timeline):
    return [(a.start, a.end, a.description, a.subject) for a in timeline.actions]


def test_parse_timeline_answer_reads_segments_inside_prose():
    text = "Here is the timeline:\n0-2s: [waves at the camera]; 2 - 4.5 sec: sits down\nDone."
    timeline = parse_timeline_answer(text, 5.0, global_prompt="A man.", subject="man")
    assert _spans(timeline) == [(0, 2, "waves at the camera", "man"), (2, 4.5, "sits down", "man")]
    assert timeline.duration == 5.0 and timeline.global_prompt == "A man."


def test_parse_timeline_answer_clips_estimates_to_the_clip():
    timeline = parse_timeline_answer("0-3s: [walks]; 3-7s: [runs]; 8-9s: [stops]", 6.0)
    assert _spans(timeline) == [(0, 3, "walks", "subject"), (3, 6, "runs", "subject")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("The man waves and then sits.", "no 'START-ENDs: description'"),
        ("0-3s: [walks]; 2-4s: [runs]", "overlaps"),
        ("3-1s: [walks]", "must be after"),
    ],
)
def test_parse_timeline_answer_errors_quote_the_answer(text, message):
    with pytest.raises(ModelOutputError, match=message) as info:
        parse_timeline_answer(text, 5.0)
    assert repr(text) in str(info.value)


def test_proposer_generates_and_parses_through_the_loaded_model(tiny_qwen):
    kwargs = {k: v for k, v in tiny_qwen.chat_kwargs.items() if k != "num_frames"}
    proposer = VlmTimelineProposer(str(tiny_qwen.path), max_new_tokens=40, num_frames=4, **kwargs)
    assert proposer.name == f"pretrained:qwen2.5-vl({tiny_qwen.path})"
    timeline = proposer.propose(tiny_qwen.clip, fps=tiny_qwen.fps, duration_s=3.0, subject="man")
    # fitted answer "Sure. 0-1s: [waves]; 1-3.5s: [sits down]", the end clipped to 3 s
    assert _spans(timeline) == [(0, 1, "waves", "man"), (1, 3, "sits down", "man")]
    assert VlmTimelineProposer(proposer.chat).chat is proposer.chat


@pytest.fixture(scope="module")
def scorer(tiny_clip):
    return ClipAlignmentScorer(str(tiny_clip), num_frames=4)


def test_clip_score_is_the_mean_frame_text_cosine(scorer, tiny_clip):
    assert scorer.name == f"pretrained:clip({tiny_clip})"
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (4, 40, 30, 3), dtype=np.uint8)
    score = scorer.score(frames, "a man waves")
    per_frame = [scorer.score(frames[i : i + 1], "a man waves") for i in range(4)]
    assert -1.0 <= score <= 1.0
    assert score == pytest.approx(np.mean(per_frame), abs=1e-5)
    assert scorer.score(frames, "a red car drives away") != pytest.approx(score, abs=1e-6)


def test_clip_scorer_rejects_other_models_and_empty_text(scorer, tiny_sam2):
    with pytest.raises(ValueError, match="non-empty text"):
        scorer.score(np.zeros((1, 8, 8, 3), np.uint8), " ")
    with pytest.raises(BackendLoadError, match="expected 'clip'"):
        ClipAlignmentScorer(str(tiny_sam2))


class _BrightnessScorer:
    """Scores a segment by its mean pixel value and records the segments it saw."""

    def __init__(self):
        self.seen = []

    def score(self, frames, text):
        self.seen.append((int(frames[0, 0, 0, 0]), len(frames), text))
        return float(frames.mean())


def test_alignment_scores_cut_each_candidate_segment():
    fps = 2.0
    frames = np.stack([np.full((4, 4, 3), i, np.uint8) for i in range(10)])  # 5 s, value = index
    candidates = [
        [SubAction(0, 2, "waves"), SubAction(0.5, 1.5, "waves")],
        [SubAction(2, 5, "sits")],
    ]
    scorer = _BrightnessScorer()
    scores = alignment_scores(scorer, frames, fps, candidates)
    assert scorer.seen == [(0, 4, "waves"), (1, 2, "waves"), (4, 6, "sits")]
    assert scores == [[1.5, 1.5], [6.5]]
    with pytest.raises(ValueError, match="starts after"):
        alignment_scores(scorer, frames, fps, [[SubAction(6, 7, "late")]])


def test_select_best_candidates_keeps_the_best_per_sub_action():
    a = [SubAction(0, 2, "waves"), SubAction(0, 1.5, "waves hand"), SubAction(0.5, 2, "waves")]
    b = [SubAction(2, 4, "sits"), SubAction(2.5, 4, "sits down")]
    assert select_best_candidates([a, b], [[0.2, 0.31, 0.3], [0.5, 0.1]]) == [a[1], b[0]]
    # a tie keeps the first (the VLM's own proposal)
    assert select_best_candidates([b], [np.array([0.4, 0.4])]) == [b[0]]


@pytest.mark.parametrize(
    ("candidates", "scores", "message"),
    [
        ([[SubAction(0, 1, "x")]], [], "1 sub-actions but 0 score rows"),
        ([[SubAction(0, 1, "x")]], [[0.1, 0.2]], "1 candidates"),
        ([[]], [[]], "0 candidates"),
        ([[SubAction(0, 1, "x")]], [[float("nan")]], "not all finite"),
    ],
)
def test_select_best_candidates_rejects_mismatched_inputs(candidates, scores, message):
    with pytest.raises(ValueError, match=message):
        select_best_candidates(candidates, scores)
