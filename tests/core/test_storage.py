import pyarrow as pa
import pytest

from core.errors import StageInputError, StorageError
from core.storage import LocalObjectStore
from core.tables import read_table, to_table, write_table


def test_put_get_list_delete(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("a/b/c.txt", b"hello")
    store.put_bytes("a/d.txt", b"x")
    assert store.get_bytes("a/b/c.txt") == b"hello"
    assert store.list("a") == ["a/b/c.txt", "a/d.txt"]
    store.delete_prefix("a/b")
    assert store.list("a") == ["a/d.txt"]
    with pytest.raises(StorageError, match="not found"):
        store.get_bytes("a/b/c.txt")


@pytest.mark.parametrize("key", ["/abs", "../up", "a//b", "a/./b", ""])
def test_keys_cannot_escape(tmp_path, key):
    with pytest.raises(StorageError):
        LocalObjectStore(tmp_path).put_bytes(key, b"x")


def test_writer_publishes_only_on_success(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("obj.bin", b"old")
    with pytest.raises(RuntimeError):
        with store.writer("obj.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert store.get_bytes("obj.bin") == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["obj.bin"]  # no temp files left
    with store.writer("obj.bin") as tmp:
        tmp.write_bytes(b"new")
    assert store.get_bytes("obj.bin") == b"new"


def test_staged_prefix_replaces_whole_or_nothing(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("clips/s/old.mp4", b"1")
    with pytest.raises(RuntimeError):
        with store.staged_prefix("clips/s") as staging:
            store.put_bytes(f"{staging}/new.mp4", b"2")
            raise RuntimeError("crash")
    assert store.list("clips") == ["clips/s/old.mp4"]
    with store.staged_prefix("clips/s") as staging:
        store.put_bytes(f"{staging}/new.mp4", b"2")
    assert store.list("clips") == ["clips/s/new.mp4"]


def test_tables_roundtrip_and_schema_checks(tmp_path):
    store = LocalObjectStore(tmp_path)
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    write_table(store, "t/x.parquet", to_table([{"a": 1, "b": "x"}, {"a": 2}], schema))
    assert read_table(store, "t/x.parquet").to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    with pytest.raises(ValueError, match="not in the schema"):
        to_table([{"a": 1, "c": 3}], schema)
    with pytest.raises(StageInputError, match="needed by me"):
        read_table(store, "t/missing.parquet", needed_by="me")
