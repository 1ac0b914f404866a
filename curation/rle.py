"""COCO run-length encoding of binary masks (the `mask_annotation` format of ReactID-Data).

Runs alternate background/foreground starting with background, over the mask in
column-major order; the counts are compressed into a string exactly as pycocotools'
`rleToString` does (6-bit characters from '0', each run stored as its difference from the
run two before it). Stored as JSON text `{"size": [h, w], "counts": "..."}`.
"""

from __future__ import annotations

import json

import numpy as np


def _runs(mask: np.ndarray) -> list[int]:
    flat = np.asarray(mask, bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges).tolist()
    return ([0] + runs) if flat[0] else runs


def counts_to_string(counts: list[int]) -> str:
    out = []
    for i, run in enumerate(counts):
        x = int(run) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(s: str) -> list[int]:
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask: np.ndarray) -> str:
    """Boolean (H, W) mask -> COCO RLE as JSON text."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    h, w = mask.shape
    return json.dumps({"size": [int(h), int(w)], "counts": counts_to_string(_runs(mask))}, separators=(",", ":"))


def _parse(rle: str) -> tuple[int, int, list[int]]:
    try:
        obj = json.loads(rle)
        h, w = (int(v) for v in obj["size"])
        counts = obj["counts"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a COCO RLE JSON object: {rle[:60]!r} ({exc})") from None
    runs = string_to_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if sum(runs) != h * w or any(r < 0 for r in runs):
        raise ValueError(f"RLE runs sum to {sum(runs)}, expected {h}x{w}={h * w}")
    return h, w, runs


def rle_decode(rle: str) -> np.ndarray:
    """COCO RLE JSON text -> boolean (H, W) mask."""
    h, w, runs = _parse(rle)
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    return flat.reshape((h, w), order="F")


def rle_area(rle: str) -> int:
    """Foreground pixel count, without decoding."""
    _, _, runs = _parse(rle)
    return int(sum(runs[1::2]))


def rle_bbox(rle: str) -> tuple[int, int, int, int] | None:
    """Tight box (x0, y0, x1, y1), exclusive ends, of the foreground; None when empty."""
    mask = rle_decode(rle)
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
