"""Sample difficulty exactly as the paper's Sec. 3.2: D_sub (Eq. 1), D_app (Eq. 2), D_sam and
their weighted sum D_overall.

The functions are pure: the stage feeds them mask area fractions and feature vectors, the
benchmark feeds them 20M-row columns. A score that cannot be computed raises
`DifficultyInputError` (the caller excludes the sample with the reason); it is never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ReactIDError


class DifficultyInputError(ReactIDError):
    """A difficulty cue cannot be computed from the sample's annotation."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


MISSING_MASK = "missing_mask"
INVALID_MASK = "invalid_mask"
MISSING_REGIONS = "missing_subject_regions"
MISSING_REFERENCE = "missing_reference"


@dataclass(frozen=True)
class DifficultyWeights:
    """lambda_sub, lambda_app, lambda_sam of D_overall (paper Sec. 4.1: 0.5, 1, 1).

    Finite, >= 0 and not all 0: checked where params load (training/params.py), for the
    params' weights and for every ablation variant's.
    """

    lambda_sub: float
    lambda_app: float
    lambda_sam: float


def mask_area_fraction(mask: np.ndarray) -> float:
    """Share of a frame's pixels on the subject: (HW)^-1 sum_ij 1{M(i,j) = 1}.

    Args:
        mask: (H, W) binary mask (bool or 0/1).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or not mask.size:
        raise ValueError(f"mask must be a non-empty (H, W) array, got shape {mask.shape}")
    return float(np.count_nonzero(mask == 1) / mask.size)


def _check_fractions(fractions: np.ndarray) -> None:
    if not len(fractions):
        raise DifficultyInputError(MISSING_MASK, "the subject has no mask frames")
    bad = ~np.isfinite(fractions) | (fractions < 0) | (fractions > 1)
    if bad.any():
        raise DifficultyInputError(
            INVALID_MASK, f"{int(bad.sum())} of {len(fractions)} mask area fractions are not in [0, 1]"
        )


def subject_size_difficulty(area_fractions: Sequence[float] | np.ndarray) -> float:
    """D_sub (Eq. 1) = 1 - (NHW)^-1 sum_n sum_ij 1{M_n(i,j) = 1} = 1 - mean_n area_n.

    Every frame of a clip has the same H x W, so the pixel count over N frames divided by
    NHW is the mean of the per-frame area fractions.

    Args:
        area_fractions: (N,) mask pixels / frame pixels, one per annotated frame.

    Returns:
        D_sub in [0, 1]; 1 for a subject too small to see.

    Raises:
        DifficultyInputError: no frames (missing_mask) or a fraction outside [0, 1] (invalid_mask).
    """
    fractions = np.asarray(area_fractions, dtype=np.float64)
    _check_fractions(fractions)
    return float(1.0 - fractions.mean())


def subject_size_difficulty_rle(mask_rles: Sequence[str]) -> float:
    """D_sub (Eq. 1) from the masks themselves: 1 - sum_n |M_n| / (N H W), pixel counts read
    from the COCO RLEs without decoding them.

    Args:
        mask_rles: one COCO RLE (JSON text with "size" [h, w]) per annotated frame.

    Raises:
        DifficultyInputError: no masks (missing_mask) or an unreadable RLE (invalid_mask).
    """
    import json

    from curation.rle import rle_area

    if not mask_rles:
        raise DifficultyInputError(MISSING_MASK, "the subject has no mask frames")
    on = total = 0
    for n, rle in enumerate(mask_rles):
        try:
            h, w = json.loads(rle)["size"]
            area = rle_area(rle)
        except (ValueError, KeyError, TypeError) as exc:
            raise DifficultyInputError(INVALID_MASK, f"mask {n} is not a readable COCO RLE: {exc}") from None
        if h * w <= 0 or not 0 <= area <= h * w:
            raise DifficultyInputError(INVALID_MASK, f"mask {n} has {area} foreground pixels in a {h}x{w} frame")
        on += area
        total += h * w
    return 1.0 - on / total


def subject_size_difficulty_ragged(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """D_sub (Eq. 1) for many samples at once from a ragged column (Arrow list layout).

    Args:
        values: (T,) all samples' area fractions back to back.
        offsets: (S + 1,) sample s owns values[offsets[s]:offsets[s + 1]].

    Returns:
        (S,) float64 D_sub; NaN where a sample has no frames or a fraction outside [0, 1]
        (the caller excludes those rows with a reason).
    """
    values = np.asarray(values)
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    if not len(values):
        return np.full(len(counts), np.nan)
    # reduceat wants start indices < len(values); empty rows are masked below anyway
    starts = np.minimum(offsets[:-1], len(values) - 1)
    lo, hi = values.min(), values.max()  # NaN propagates into both and fails the test
    if lo >= 0 and hi <= 1:
        sums = np.add.reduceat(values, starts, dtype=np.float64)
        bad_rows = np.zeros(len(counts), bool)
    else:
        ok = (values >= 0) & (values <= 1)
        sums = np.add.reduceat(np.where(ok, values, 0), starts, dtype=np.float64)
        bad_rows = np.add.reduceat(~ok, starts, dtype=np.int64) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 1.0 - sums / counts
    d[(counts == 0) | bad_rows] = np.nan
    return d


def _unit_rows(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or not len(x):
        reason = MISSING_REFERENCE if what == "reference" else MISSING_REGIONS
        raise DifficultyInputError(reason, f"{what} features must be a non-empty (n, D) array, got {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(np.isfinite(x)) or np.any(norms == 0):
        reason = MISSING_REFERENCE if what == "reference" else MISSING_REGIONS
        raise DifficultyInputError(reason, f"{what} features contain a zero or non-finite vector")
    return x / norms


def appearance_difficulty(reference: np.ndarray, regions: np.ndarray) -> float:
    """D_app (Eq. 2) = 1 - N^-1 sum_i F(I_ref) . F(P_i) / (|F(I_ref)| |F(P_i)|).

    With several reference images the equation is averaged over them, i.e. the mean cosine
    over every (reference, region) pair.

    Args:
        reference: (R, D) features of the reference image(s).
        regions: (N, D) features of the subject's N detected regions in the clip.

    Returns:
        D_app in [0, 2]; 0 when every region matches the reference exactly.

    Raises:
        DifficultyInputError: no reference or no region features, or a zero vector.
    """
    ref = _unit_rows(reference, "reference")
    reg = _unit_rows(regions, "region")
    if ref.shape[1] != reg.shape[1]:
        raise ValueError(f"reference features are {ref.shape[1]}-d and region features {reg.shape[1]}-d")
    return float(1.0 - (ref @ reg.T).mean())


def overall_difficulty(
    d_sub: np.ndarray, d_app: np.ndarray, d_sam: np.ndarray, weights: DifficultyWeights
) -> np.ndarray:
    """D_overall = lambda_sub D_sub + lambda_app D_app + lambda_sam D_sam, vectorised.

    Args:
        d_sub, d_app, d_sam: (S,) arrays of the three cues.
        weights: the lambdas.

    Returns:
        (S,) float64 D_overall.

    Raises:
        ValueError: the arrays differ in length or a cue is not finite.
    """
    d_sub, d_app = np.asarray(d_sub, np.float64), np.asarray(d_app, np.float64)
    d_sam = np.asarray(d_sam)
    if not d_sub.shape == d_app.shape == d_sam.shape or d_sub.ndim != 1:
        raise ValueError(f"cue arrays must be 1-d of one length, got {d_sub.shape}, {d_app.shape}, {d_sam.shape}")
    for name, arr in (("d_sub", d_sub), ("d_app", d_app)):
        if len(arr) and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):  # NaN propagates to min/max
            bad = int((~np.isfinite(arr)).sum())
            raise ValueError(f"{name} has {bad} non-finite values; exclude those samples first")
    if len(d_sam) and (d_sam.min() < 0 or d_sam.max() > 1 or (d_sam.dtype.kind == "f" and np.any(d_sam % 1))):
        raise ValueError("d_sam must be 0 (intra-clip) or 1 (inter-clip)")
    out = d_sub * weights.lambda_sub
    out += d_app * weights.lambda_app
    out += d_sam * weights.lambda_sam
    return out
