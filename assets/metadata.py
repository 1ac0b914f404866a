"""Turn a stage's JSON metadata into Dagster metadata values (tables, paths, plots)."""

from __future__ import annotations

import base64
from typing import Any

import dagster as dg

from core.markdown import markdown_table


def to_dagster(metadata: dict[str, Any], *, skipped: bool, root: str) -> dict[str, dg.MetadataValue]:
    out: dict[str, dg.MetadataValue] = {"up_to_date_skip": dg.MetadataValue.bool(skipped)}
    for key, value in metadata.items():
        if key.endswith("preview") and isinstance(value, list):
            out[key] = dg.MetadataValue.md(markdown_table(value))
        elif key == "table" or key.endswith("_key"):
            out[key] = dg.MetadataValue.path(f"{root}/{value}")
        elif isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = dg.MetadataValue.float(value)
        elif isinstance(value, str):
            out[key] = dg.MetadataValue.text(value)
        elif value is None:
            out[key] = dg.MetadataValue.text("not computed")
        else:
            out[key] = dg.MetadataValue.json(value)
    return out


def png_markdown(png: bytes, title: str) -> dg.MetadataValue:
    data = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{data})")
