"""OpenS2V-Eval v1.1 motion smoothness: Q-Align quality over sliding windows.

Definition (``eval/get_motion_smoothness.py`` of OpenS2V-Nexus v1.1): for every frame t,
a window of ``w`` frames (default 3) centred on t is rated by Q-Align's video-quality head
(softmax over the logits of "excellent, good, fair, poor, bad", weighted 1, 0.75, 0.5, 0.25,
0). Where adjacent windows' ratings differ by more than 0.025, both frames count as
artifacts; the score is ``1 - artifacts / frames``.

Windows near the edges follow OpenS2V: indices are clipped to the clip, short windows are
padded by repeating their last index at the start of the clip and their first index
elsewhere, and the first ``(w - 1) // 2`` windows are the first frame repeated.

The window scoring and artifact rule are plain functions here; the scorer is the
``q-future/one-align`` mPLUG-Owl2 model loaded through the ``q_align`` package (not part of
transformers), which is not installable on this platform — :class:`QAlignScorer` raises
:class:`MetricUnavailableError` when it is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from evaluation.errors import MetricUnavailableError
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, check_frames

ARTIFACT_THRESHOLD = 0.025
RATING_WORDS = ("excellent", "good", "fair", "poor", "bad")
RATING_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
PROMPT = (
    "USER: How would you rate the quality of this video?\n<|image|>\n"
    "ASSISTANT: The quality of the video is"
)

# windows of RGB frames -> one quality rating in [0, 1] per window
WindowScorer = Callable[[list[list[np.ndarray]]], np.ndarray]


def sliding_windows(num_frames: int, window: int = 3) -> list[list[int]]:
    """Frame indices of the window rated for each frame, as OpenS2V builds them.

    Args:
        num_frames: frames in the clip (> 0).
        window: window length (> 0).

    Returns:
        ``num_frames`` lists of ``window`` indices.
    """
    if num_frames <= 0 or window <= 0:
        raise ValueError(f"need num_frames > 0 and window > 0, got {num_frames}, {window}")
    left = (window - 1) // 2
    right = window - 1 - left
    windows = []
    for t in range(num_frames):
        start, stop = max(0, t - left), min(num_frames, t + right + 1)
        indices = list(range(start, stop))
        while len(indices) < window:
            if start == 0:
                indices.append(indices[-1])
            else:
                indices.insert(0, indices[0])
        windows.append([indices[0]] * window if t < left else indices)
    return windows


def artifact_frames(scores: Sequence[float], threshold: float = ARTIFACT_THRESHOLD) -> np.ndarray:
    """Frames next to a jump of more than ``threshold`` between adjacent window ratings.

    Args:
        scores: one rating per frame.
        threshold: largest allowed change between neighbours.

    Returns:
        Sorted unique frame indices (both sides of every jump).
    """
    jumps = np.flatnonzero(np.abs(np.diff(np.asarray(scores, dtype=np.float64))) > threshold)
    return np.unique(np.concatenate([jumps, jumps + 1]))


def qalign_smoothness(scores: Sequence[float], threshold: float = ARTIFACT_THRESHOLD) -> float:
    """``1 - artifact frames / frames`` from per-frame window ratings."""
    if len(scores) == 0:
        raise ValueError("no window ratings")
    return 1.0 - len(artifact_frames(scores, threshold)) / len(scores)


class MotionSmoothnessQAlign:
    """OpenS2V-Eval v1.1 MotionSmoothness with a Q-Align window scorer (pretrained)."""

    spec = MetricSpec(
        name="motion_smoothness",
        key="motion_smoothness",
        backend="pretrained",
        definition="OpenS2V-Eval v1.1 get_motion_smoothness.py (Q-Align one-align, window 3)",
        is_proxy=False,
    )

    def __init__(self, scorer: WindowScorer, window: int = 3) -> None:
        self.scorer = scorer
        self.window = window

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        frames = check_frames(frames)
        windows = [[frames[i] for i in w] for w in sliding_windows(len(frames), self.window)]
        scores = np.asarray(self.scorer(windows), dtype=np.float64)
        if scores.shape != (len(frames),):
            raise ValueError(f"scorer returned {scores.shape} ratings for {len(frames)} windows")
        return MetricValue(self.spec, qalign_smoothness(scores), f"{len(frames)} windows")


class QAlignScorer:
    """Q-Align (mPLUG-Owl2 ``q-future/one-align``) video-quality rating per window.

    Args:
        model_path: hub id or local directory of the one-align weights.
        device: torch device string.
        batch_size: windows per forward pass.

    Raises:
        MetricUnavailableError: when the ``q_align`` package is not installed.
    """

    def __init__(
        self, model_path: str = "q-future/one-align", device: str = "cpu", batch_size: int = 16
    ) -> None:
        try:
            import torch
            from q_align.constants import IMAGE_TOKEN_INDEX
            from q_align.mm_utils import tokenizer_image_token
            from q_align.model.builder import load_pretrained_model
        except ImportError as exc:
            raise MetricUnavailableError(
                "Q-Align motion smoothness needs the 'q_align' package (mPLUG-Owl2 code, not in "
                "transformers) and the q-future/one-align weights"
            ) from exc
        self._torch = torch
        tokenizer, model, processor, _ = load_pretrained_model(
            model_path, None, "mplug_owl2", device=device
        )
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        self.batch_size = batch_size
        # Token 0 is BOS; the rating word is the next token.
        self.word_ids = [ids[1] for ids in tokenizer(list(RATING_WORDS))["input_ids"]]
        self.weights = torch.tensor(RATING_WEIGHTS, dtype=model.dtype, device=model.device)
        self.input_ids = (
            tokenizer_image_token(PROMPT, tokenizer, IMAGE_TOKEN_INDEX, return_tensors="pt")
            .unsqueeze(0)
            .to(model.device)
        )

    def __call__(self, windows: list[list[np.ndarray]]) -> np.ndarray:
        from PIL import Image

        fill = tuple(int(255 * m) for m in self.processor.image_mean)
        ratings = []
        for i in range(0, len(windows), self.batch_size):
            batch = [
                self.processor.preprocess(
                    [_pad_square(Image.fromarray(f), fill) for f in window], return_tensors="pt"
                )["pixel_values"].to(self.model.device, self.model.dtype)
                for window in windows[i : i + self.batch_size]
            ]
            with self._torch.inference_mode():
                logits = self.model(self.input_ids.repeat(len(batch), 1), images=batch)["logits"]
                probs = self._torch.softmax(logits[:, -1, self.word_ids], dim=-1)
                ratings.append((probs @ self.weights).float().cpu().numpy())
        return np.concatenate(ratings)


def _pad_square(image, fill: tuple[int, ...]):
    """Centre ``image`` on a square canvas of ``fill`` colour (Q-Align's preprocessing)."""
    from PIL import Image

    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas
