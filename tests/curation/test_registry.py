"""The raw pool: a folder on disk (raw_videos.pool_root) or a prefix of the object store
(raw_videos.pool_prefix), listed, hashed and opened the same way."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest

from core.errors import ParamsError, StageInputError
from orchestration.params import parse_params
from core.storage import LocalObjectStore
from curation import video_io as vio
from curation.registry import LocalPool, StorePool, parse_manifest, raw_pool

MANIFEST = [
    {"path": "b.mp4", "caption": "a dog runs", "identity": "dog-1",
     "segments": [{"timestamp": [0, 1], "caption": "runs"}]},
    {"path": "a.mp4", "caption": "a cat sits", "attributes": {"gender": "n/a"}},
]


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _store_shard(store: LocalObjectStore, prefix: str, shard: str) -> None:
    store.put_bytes(f"{prefix}/{shard}/a.mp4", b"aaaa")
    store.put_bytes(f"{prefix}/{shard}/b.mp4", b"bbbb")
    store.put_bytes(f"{prefix}/{shard}/notes.txt", b"not a video")
    store.put_bytes(f"{prefix}/{shard}/extra/c.mp4", b"nested: not part of the shard")
    store.put_bytes(f"{prefix}/{shard}/manifest.jsonl", _jsonl(MANIFEST))


def test_a_store_shard_lists_like_a_folder_shard(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    _store_shard(store, "incoming", "s1")
    folder = tmp_path / "pool" / "s1"
    folder.mkdir(parents=True)
    for name in ("a.mp4", "b.mp4", "notes.txt", "manifest.jsonl"):
        (folder / name).write_bytes(store.get_bytes(f"incoming/s1/{name}"))

    stored = StorePool(store, "incoming").list_shard("s1")
    local = LocalPool(tmp_path / "pool").list_shard("s1")

    assert [e.location for e in stored] == ["incoming/s1/a.mp4", "incoming/s1/b.mp4", "incoming/s1/notes.txt"]
    assert [e.location for e in local] == [str(folder / n) for n in ("a.mp4", "b.mp4", "notes.txt")]
    assert all(Path(e.location).is_absolute() for e in local)  # what open_location tells apart
    strip = [(e.video_id, e.name, e.suffix, e.caption, e.identity, e.segments, e.attributes) for e in stored]
    assert strip == [(e.video_id, e.name, e.suffix, e.caption, e.identity, e.segments, e.attributes) for e in local]
    by_name = {e.name: e for e in stored}
    assert by_name["b.mp4"].identity == "dog-1" and by_name["b.mp4"].segments[0]["caption"] == "runs"
    assert by_name["a.mp4"].attributes == {"gender": "n/a"} and by_name["notes.txt"].caption is None


def test_a_csv_manifest_in_the_store(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("pool/s2/v.mp4", b"v")
    store.put_bytes("pool/s2/manifest.csv", b"path,caption,identity\r\nv.mp4,\"a man, waving\",p1\r\n")
    [entry] = StorePool(store, "pool/").list_shard("s2")
    assert (entry.location, entry.caption, entry.identity) == ("pool/s2/v.mp4", "a man, waving", "p1")


def test_a_missing_store_shard_names_where_it_looked(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("incoming/other/v.mp4", b"v")
    with pytest.raises(StageInputError, match=r"shard 'nope' not found: no object under .*incoming/nope/ "
                                              r"\(raw_videos.pool_prefix\)"):
        StorePool(store, "incoming").list_shard("nope")


def test_a_broken_store_manifest_stops_the_stage(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("incoming/s3/v.mp4", b"v")
    store.put_bytes("incoming/s3/manifest.jsonl", b'{"path": "v.mp4"}\n{"path": ')
    with pytest.raises(StageInputError, match=r"incoming/s3/manifest.jsonl:2: not valid JSON"):
        StorePool(store, "incoming").list_shard("s3")


def test_parse_manifest_errors():
    with pytest.raises(StageInputError, match="expected an object with a 'path' field"):
        parse_manifest(b'{"caption": "x"}\n', ".jsonl", "m.jsonl")
    with pytest.raises(StageInputError, match="needs a 'path' column"):
        parse_manifest(b"file,caption\nv.mp4,x\n", ".csv", "m.csv")
    with pytest.raises(StageInputError, match="not UTF-8"):
        parse_manifest(b'{"path": "\xff"}\n', ".jsonl", "m.jsonl")


def test_store_shard_hash_follows_the_contents(tmp_path):
    store = LocalObjectStore(tmp_path)
    _store_shard(store, "incoming", "s1")
    pool = StorePool(store, "incoming")
    first = pool.content_hash("s1")
    assert pool.content_hash("s1") == first
    store.put_bytes("incoming/s1/a.mp4", b"AAAA")  # rewritten, same size
    rewritten = pool.content_hash("s1")
    assert rewritten != first
    store.put_bytes("incoming/s1/d.mp4", b"new")
    assert pool.content_hash("s1") not in (first, rewritten)
    # another shard does not change this one's hash
    after = pool.content_hash("s1")
    store.put_bytes("incoming/s10/a.mp4", b"x")
    assert pool.content_hash("s1") == after


def test_local_shard_hash_follows_the_files(tmp_path):
    folder = tmp_path / "s1"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"aaaa")
    pool = LocalPool(tmp_path)
    first = pool.content_hash("s1")
    (folder / "b.mp4").write_bytes(b"b")
    assert pool.content_hash("s1") != first
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "s1/a.mp4"}) + "\n")
    assert [e.location for e in pool.list_shard("m")] == [str(folder / "a.mp4")]


def test_raw_pool_follows_params(tmp_path, base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    store = LocalObjectStore(tmp_path)
    params = parse_params(raw)
    assert raw["raw_videos"]["pool_prefix"] is None
    assert isinstance(raw_pool(params, store), LocalPool)
    raw["raw_videos"]["pool_prefix"] = "/incoming/batches/"
    params = parse_params(raw)
    assert params.raw_videos.pool_prefix == "incoming/batches"
    pool = raw_pool(params, store)
    assert isinstance(pool, StorePool) and pool.prefix == "incoming/batches" and pool.store is store


@pytest.mark.parametrize("prefix", ["../elsewhere", "a//b", "", "/", "a/./b", "a\\b"])
def test_bad_pool_prefix_names_the_key(base_params_raw, prefix):
    raw = copy.deepcopy(base_params_raw)
    raw["raw_videos"]["pool_prefix"] = prefix
    with pytest.raises(ParamsError, match=r"raw_videos.pool_prefix: expected a relative object-key prefix"):
        parse_params(raw)


def test_the_pool_prefix_has_one_owner(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    assert "pool_prefix" not in raw["orchestration"]["new_shards"]
    raw["orchestration"]["new_shards"]["pool_prefix"] = "incoming"
    with pytest.raises(ParamsError, match=r"orchestration.new_shards.pool_prefix: unknown key"):
        parse_params(raw)


def test_open_location_gives_a_path_or_a_stream(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    store.put_bytes("incoming/s1/v.mp4", b"0123456789")
    with vio.open_location(store, "incoming/s1/v.mp4") as src:
        assert isinstance(src, io.IOBase) and src.read() == b"0123456789"
    local = tmp_path / "v.mp4"
    with vio.open_location(store, str(local)) as src:
        assert src == local
