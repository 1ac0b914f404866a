"""Compare the tables of two local stores (two `make demo` runs, before and after a change).

    python tools/compare_stores.py OLD_ROOT NEW_ROOT [--ignore-columns seconds,...] [--json]

Every parquet file under `tables/` of either root is read with pyarrow and compared by
content: the same columns, the same rows in the same order, equal values. Columns named
by --ignore-columns (timings) are left out of the comparison and listed in the report.
Prints a JSON report; exits 1 when a table is missing on one side or differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq


def _tables(root: Path) -> dict[str, Path]:
    base = root / "tables"
    return {str(p.relative_to(base)): p for p in sorted(base.rglob("*.parquet"))}


def compare_table(old: Path, new: Path, ignore: set[str]) -> dict:
    """What differs between two parquet files: columns, row count, or the columns whose values differ."""
    a, b = pq.read_table(old), pq.read_table(new)
    ignored = sorted((set(a.column_names) | set(b.column_names)) & ignore)
    a = a.drop_columns([c for c in ignored if c in a.column_names])
    b = b.drop_columns([c for c in ignored if c in b.column_names])
    out: dict = {"rows": [a.num_rows, b.num_rows], "ignored": ignored}
    if a.column_names != b.column_names:
        out["columns_only_old"] = sorted(set(a.column_names) - set(b.column_names))
        out["columns_only_new"] = sorted(set(b.column_names) - set(a.column_names))
        out["column_order_differs"] = sorted(a.column_names) == sorted(b.column_names)
    common = [c for c in a.column_names if c in b.column_names]
    if a.num_rows == b.num_rows:
        out["values_differ"] = [c for c in common if not a.column(c).equals(b.column(c))]
    out["identical"] = (a.num_rows == b.num_rows and a.column_names == b.column_names
                        and not out.get("values_differ"))
    return out


def compare_stores(old_root: Path, new_root: Path, ignore: set[str]) -> dict:
    old, new = _tables(old_root), _tables(new_root)
    report = {"old": str(old_root), "new": str(new_root), "only_old": sorted(set(old) - set(new)),
              "only_new": sorted(set(new) - set(old)), "tables": {}}
    for key in sorted(set(old) & set(new)):
        report["tables"][key] = compare_table(old[key], new[key], ignore)
    report["identical"] = sorted(k for k, v in report["tables"].items() if v["identical"])
    report["different"] = sorted(k for k, v in report["tables"].items() if not v["identical"])
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old_root", type=Path)
    ap.add_argument("new_root", type=Path)
    ap.add_argument("--ignore-columns", default="", help="comma-separated column names left out (timings)")
    args = ap.parse_args()
    ignore = {c for c in args.ignore_columns.split(",") if c}
    report = compare_stores(args.old_root, args.new_root, ignore)
    print(json.dumps(report, indent=1))
    sys.exit(1 if report["only_old"] or report["only_new"] or report["different"] else 0)


if __name__ == "__main__":
    main()
