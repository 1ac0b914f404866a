"""Small PNG plots for asset metadata and the report (matplotlib, Agg, lazy import)."""

from __future__ import annotations


from core import layout
from core.images import figure_png, pyplot
from core.storage import ObjectStore
from core.tables import read_table


def _png(fig) -> bytes:
    return figure_png(fig, dpi=90, bbox_inches="tight")


def _figure(w: float, h: float):
    return pyplot().subplots(1, 2, figsize=(w, h))


def quality_plot(store: ObjectStore, shard: str, min_motion: float | None = None) -> bytes | None:
    """Foreground motion and sharpness per clip of a shard."""
    key = layout.table("clip_quality", shard)
    if not store.exists(key):
        return None
    rows = read_table(store, key).to_pylist()
    if not rows:
        return None
    fig, (a, b) = _figure(9, 3)
    names = [r["clip_id"].rsplit("_", 1)[-1] for r in rows]
    a.barh(names, [r["motion_foreground"] for r in rows], color="tab:blue")
    if min_motion is not None:
        a.axvline(min_motion, color="red", ls="--", label="min_motion")
        a.legend(fontsize=7)
    a.set_title("foreground motion (px/frame)", fontsize=9)
    b.barh(names, [r["sharpness"] for r in rows], color="tab:green")
    b.set_xscale("log")
    b.set_title("sharpness (Laplacian var.)", fontsize=9)
    for ax in (a, b):
        ax.tick_params(labelsize=7)
    return _png(fig)


def rejection_plot(rejections: dict[str, int], kept: int) -> bytes:
    fig, (a, b) = _figure(8, 2.6)
    a.bar(["kept", "rejected"], [kept, sum(rejections.values())], color=["tab:green", "tab:red"])
    a.set_title("clips", fontsize=9)
    b.barh(list(rejections) or ["(none)"], list(rejections.values()) or [0], color="tab:red")
    b.set_title("rejections by reason", fontsize=9)
    return _png(fig)
