"""Parquet tables with explicit schemas, written atomically through the object store."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import StageInputError
from core.storage import ObjectStore


def to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table from row dicts, checking every row against `schema`.

    Extra keys are an error (they would be silently dropped otherwise); missing nullable
    keys become null.
    """
    names = set(schema.names)
    for i, row in enumerate(rows):
        extra = set(row) - names
        if extra:
            raise ValueError(f"row {i} has columns not in the schema: {sorted(extra)}")
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


def write_table(store: ObjectStore, key: str, table: pa.Table) -> None:
    """Write `table` as Parquet at `key`; atomic."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    store.put_bytes(key, buf.getvalue())


def read_table(store: ObjectStore, key: str, *, needed_by: str = "") -> pa.Table:
    """Read the Parquet table at `key`.

    Raises:
        StageInputError: the table does not exist (its stage has not run).
    """
    if not store.exists(key):
        who = f" (needed by {needed_by})" if needed_by else ""
        raise StageInputError(f"table {key!r} does not exist{who}; run its stage first")
    # An Arrow buffer, not a Python file object: Arrow's scan threads can hold the last
    # reference to the reader, and releasing a Python file then needs the GIL, which at
    # interpreter exit aborts the process ("terminate called without an active exception").
    return pq.read_table(pa.BufferReader(store.get_bytes(key)))


def write_json(store: ObjectStore, key: str, payload: Any) -> None:
    store.put_bytes(key, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def read_json(store: ObjectStore, key: str) -> Any:
    return json.loads(store.get_bytes(key))
