"""The S3 object store against a real S3-protocol server (moto, on 127.0.0.1)."""

from __future__ import annotations

import io
import os

import pytest

from core.errors import ParamsError, StorageError
from core.storage_s3 import MIB, S3ObjectStore, credential_env_names, credentials_from_env
from core.tables import read_table, to_table, write_table


def make_store(s3_bucket, prefix="proj", part_size_mb=5) -> S3ObjectStore:
    endpoint, bucket, creds = s3_bucket
    return S3ObjectStore(endpoint, bucket, prefix, secure=False, region="us-east-1", part_size_mb=part_size_mb,
                         credentials=creds)


def names_in_bucket(store: S3ObjectStore) -> list[str]:
    return sorted(o.object_name for o in store._client.list_objects(store.bucket, recursive=True))


def test_put_get_list_exists_delete(s3_bucket):
    store = make_store(s3_bucket)
    store.put_bytes("a/b/c.txt", b"hello")
    store.put_bytes("a/d.txt", b"x")
    store.put_bytes("ab/e.txt", b"not under a/")
    assert store.get_bytes("a/b/c.txt") == b"hello"
    assert store.exists("a/d.txt") and not store.exists("a/zzz.txt")
    assert store.list("a") == ["a/b/c.txt", "a/d.txt"]
    assert store.list("a/d.txt") == ["a/d.txt"]
    assert store.list("nothing") == []
    assert names_in_bucket(store) == ["proj/a/b/c.txt", "proj/a/d.txt", "proj/ab/e.txt"]  # under the prefix
    assert store.uri("a/d.txt") == f"s3://{store.bucket}/proj/a/d.txt"
    assert store.root_uri == f"s3://{store.bucket}/proj"
    store.delete_prefix("a/b")
    assert store.list("a") == ["a/d.txt"]
    store.delete_prefix("a/d.txt")
    assert store.list("a") == [] and store.list("ab") == ["ab/e.txt"]
    with pytest.raises(StorageError, match="not found"):
        store.get_bytes("a/b/c.txt")


@pytest.mark.parametrize("key", ["/abs", "../up", "a//b", "a/./b", ""])
def test_keys_cannot_escape(s3_bucket, key):
    with pytest.raises(StorageError):
        make_store(s3_bucket).put_bytes(key, b"x")


def test_tables_roundtrip(s3_bucket):
    import pyarrow as pa

    store = make_store(s3_bucket)
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    write_table(store, "t/x.parquet", to_table([{"a": 1, "b": "x"}, {"a": 2}], schema))
    assert read_table(store, "t/x.parquet").to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]


def test_writer_failure_leaves_nothing(s3_bucket):
    store = make_store(s3_bucket)
    with pytest.raises(RuntimeError):
        with store.writer("obj.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert not store.exists("obj.bin") and names_in_bucket(store) == []
    store.put_bytes("obj.bin", b"old")
    with pytest.raises(RuntimeError):
        with store.writer("obj.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert store.get_bytes("obj.bin") == b"old"
    with store.writer("obj.bin") as tmp:
        tmp.write_bytes(b"new")
    assert store.get_bytes("obj.bin") == b"new"
    with pytest.raises(StorageError, match="nothing was written"):
        with store.writer("never.bin"):
            pass
    assert not store.exists("never.bin")


def test_staged_prefix_replaces_whole_or_nothing(s3_bucket):
    store = make_store(s3_bucket)
    store.put_bytes("clips/s/old.mp4", b"1")
    store.put_bytes("clips/s/same.mp4", b"old")
    with pytest.raises(RuntimeError):
        with store.staged_prefix("clips/s") as staging:
            store.put_bytes(f"{staging}/new.mp4", b"2")
            raise RuntimeError("crash")
    assert store.list("clips") == ["clips/s/old.mp4", "clips/s/same.mp4"]
    assert names_in_bucket(store) == ["proj/clips/s/old.mp4", "proj/clips/s/same.mp4"]  # staging removed
    with store.staged_prefix("clips/s") as staging:
        assert staging.startswith("clips/s.staging-")
        store.put_bytes(f"{staging}/new.mp4", b"2")
        store.put_bytes(f"{staging}/same.mp4", b"new")
        store.put_bytes(f"{staging}/sub/deep.bin", b"3")
    assert store.list("clips") == ["clips/s/new.mp4", "clips/s/same.mp4", "clips/s/sub/deep.bin"]
    assert store.get_bytes("clips/s/same.mp4") == b"new"
    assert all(".staging-" not in n for n in names_in_bucket(store))


def test_large_file_uploads_as_multipart(s3_bucket, tmp_path):
    store = make_store(s3_bucket, part_size_mb=5)
    big = tmp_path / "big.bin"
    payload = os.urandom(11 * MIB)  # > part size: 3 parts (5 + 5 + 1 MiB)
    big.write_bytes(payload)
    result = store.put_file("ckpt/big.bin", big)
    assert result.etag.endswith("-3"), result.etag  # S3's multipart ETag: md5 of part md5s, "-<parts>"
    assert store._client.stat_object(store.bucket, "proj/ckpt/big.bin").etag.endswith("-3")
    small = store.put_file("ckpt/small.bin", _write(tmp_path / "small.bin", b"x" * 1000))
    assert "-" not in small.etag  # one PUT
    with store.local_path("ckpt/big.bin") as path:
        assert path.read_bytes() == payload
    assert store.get_bytes("ckpt/big.bin") == payload


def _write(path, data):
    path.write_bytes(data)
    return path


def test_failed_multipart_upload_is_aborted_and_never_visible(s3_bucket):
    store = make_store(s3_bucket, part_size_mb=5)

    class Breaks(io.RawIOBase):
        """A stream that fails after 6 MiB: the first part is uploaded, then the write dies."""

        def __init__(self):
            self.sent = 0

        def readable(self):
            return True

        def readinto(self, b):
            if self.sent >= 6 * MIB:
                raise OSError("disk went away")
            n = min(len(b), 6 * MIB - self.sent)
            b[:n] = b"\0" * n
            self.sent += n
            return n

    with pytest.raises(StorageError, match="disk went away"):
        store._put("big/part.bin", lambda name, ct: store._client.put_object(
            store.bucket, name, Breaks(), 12 * MIB, part_size=store.part_size))
    assert not store.exists("big/part.bin")
    assert store._client._list_multipart_uploads(store.bucket).uploads == []  # minio aborted it

    # A process killed mid-upload leaves an incomplete upload: invisible, cleaned on request.
    store._client._create_multipart_upload(store.bucket, "proj/big/killed.bin", {})
    assert not store.exists("big/killed.bin")
    # (moto reports a fixed 2010 start time for every upload, so the default age filter,
    # which spares uploads still running elsewhere, cannot be shown here.)
    assert store.abort_incomplete_uploads(min_age_s=0) == 1
    assert store._client._list_multipart_uploads(store.bucket).uploads == []


def test_open_stream_is_seekable_and_ranged(s3_bucket):
    store = make_store(s3_bucket)
    data = bytes(range(256)) * 4096  # 1 MiB
    store.put_bytes("blob.bin", data)
    with store.open_stream("blob.bin") as fh:
        assert fh.seekable()
        fh.seek(1000)
        assert fh.read(10) == data[1000:1010]
        fh.seek(-5, io.SEEK_END)
        assert fh.read() == data[-5:]
        fh.seek(0)
        assert fh.read() == data
    with pytest.raises(StorageError, match="not found"):
        with store.open_stream("missing.bin"):
            pass


def test_open_stream_fetches_each_block_once_however_the_reader_seeks(s3_bucket):
    from core.storage_s3 import STREAM_BLOCK

    store = make_store(s3_bucket)
    data = os.urandom(3 * STREAM_BLOCK + 123)  # four blocks, the last one short
    store.put_bytes("blob.bin", data)
    with store.open_stream("blob.bin") as fh:
        raw = fh.raw
        fh.seek(-100, io.SEEK_END)  # a demuxer reading an MP4's index at the end first
        assert fh.read() == data[-100:]
        fh.seek(10)
        assert fh.read(STREAM_BLOCK) == data[10:10 + STREAM_BLOCK]  # spans blocks 0 and 1
        fh.seek(5)
        assert fh.read(20) == data[5:25]  # back into a cached block
        assert raw.requests == 3
        fh.seek(0)
        assert fh.read() == data
        assert raw.requests == 4  # only block 2 was new


def test_pyav_decodes_from_the_stream(s3_bucket, tmp_path):
    from fractions import Fraction

    import numpy as np

    from curation import video_io as vio
    from curation.clip_writing import Segment, write_segments

    path = tmp_path / "clip.mp4"
    writer = vio.ClipWriter(path, Fraction(12), 96, 64, crf=18, preset="veryfast")
    for k in range(24):
        writer.write(np.full((64, 96, 3), (k * 9) % 255, np.uint8))
    writer.close()
    store = make_store(s3_bucket)
    store.put_file("clips/clip.mp4", path)
    local = vio.decode_frames(path)
    with store.open_stream("clips/clip.mp4") as stream:
        remote = vio.decode_frames(stream)
        written = write_segments(stream, [Segment(0, 12, tmp_path / "half.mp4")])
    assert remote.frames.shape == local.frames.shape and np.array_equal(remote.frames, local.frames)
    assert written == [12] and vio.probe(tmp_path / "half.mp4").frame_count == 12


def test_credentials_never_in_repr_or_errors(s3_bucket):
    endpoint, bucket, (access, secret, _) = s3_bucket
    store = make_store(s3_bucket)
    shown = [repr(store), str(store), str(vars(store))]
    for op in (lambda: store.get_bytes("missing/key.bin"),
               lambda: S3ObjectStore(endpoint, "no-such-bucket-x", secure=False, region="us-east-1",
                                     credentials=(access, secret, None)).put_bytes("k", b"x")):
        with pytest.raises(StorageError) as info:
            op()
        shown.append(str(info.value))
    assert "no-such-bucket-x" in shown[-1] and "storage.s3.bucket" in shown[-1]
    assert all(access not in s and secret not in s for s in shown), shown
    with pytest.raises(TypeError, match="pickled"):
        import pickle

        pickle.dumps(store)


def test_missing_credentials_name_the_env_vars(s3_bucket, monkeypatch):
    for pair in (("REACTID_S3_ACCESS_KEY", "REACTID_S3_SECRET_KEY"), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")):
        for name in pair:
            monkeypatch.delenv(name, raising=False)
    endpoint, bucket, _ = s3_bucket
    with pytest.raises(StorageError) as info:
        S3ObjectStore(endpoint, bucket, secure=False)
    for name in ("REACTID_S3_ACCESS_KEY", "REACTID_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert name in str(info.value)
    # Fallback to the AWS names, and the project's names first when both are set.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "aws-a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-s")
    assert credentials_from_env() == ("aws-a", "aws-s", None)
    monkeypatch.setenv("REACTID_S3_ACCESS_KEY", "r-a")
    monkeypatch.setenv("REACTID_S3_SECRET_KEY", "r-s")
    assert credential_env_names() == ("REACTID_S3_ACCESS_KEY", "REACTID_S3_SECRET_KEY", None)


def _storage_raw(**s3):
    return {"backend": "s3", "root": "data", "s3": {"endpoint": "127.0.0.1:9000", **s3}}


def test_params_validation_names_the_key(base_params_raw):
    import copy

    from orchestration.params import parse_params

    def parse(storage):
        raw = copy.deepcopy(base_params_raw)
        raw["storage"] = storage
        return parse_params(raw)

    with pytest.raises(ParamsError, match=r"storage\.s3\.bucket: required"):
        parse(_storage_raw())
    with pytest.raises(ParamsError, match=r"storage\.s3\.bucket"):
        parse({"backend": "s3", "root": "data"})
    with pytest.raises(ParamsError, match=r"storage\.s3\.endpoint: expected host\[:port\]"):
        parse(_storage_raw(bucket="b-1", endpoint="http://127.0.0.1:9000"))
    with pytest.raises(ParamsError, match=r"storage\.s3\.part_size_mb"):
        parse(_storage_raw(bucket="b-1", part_size_mb=1))
    with pytest.raises(ParamsError, match=r"storage\.s3\.secret_key: credentials are never read from params") as info:
        parse(_storage_raw(bucket="b-1", secret_key="hunter2-secret"))
    assert "hunter2-secret" not in str(info.value)
    assert parse(_storage_raw(bucket="b-1", prefix="/team/x/")).storage.s3.prefix == "team/x"


def test_env_var_selects_the_backend(tmp_path, base_params_raw, monkeypatch, s3_bucket):
    import copy

    import yaml

    from orchestration.params import load_params
    from core.storage import LocalObjectStore, open_params_store

    endpoint, bucket, (access, secret, _) = s3_bucket
    raw = copy.deepcopy(base_params_raw)
    raw["storage"] = {"backend": "local", "root": "data",
                      "s3": {"endpoint": endpoint, "bucket": bucket, "secure": False, "region": "us-east-1"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.delenv("REACTID_STORAGE_BACKEND", raising=False)
    assert isinstance(open_params_store(load_params(tmp_path / "params.yaml")), LocalObjectStore)
    monkeypatch.setenv("REACTID_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("REACTID_S3_ACCESS_KEY", access)
    monkeypatch.setenv("REACTID_S3_SECRET_KEY", secret)
    params = load_params(tmp_path / "params.yaml")
    assert params.storage.backend == "s3"
    store = open_params_store(params)
    assert isinstance(store, S3ObjectStore)
    store.put_bytes("hello.txt", b"hi")
    assert store.uri("hello.txt") == f"s3://{bucket}/hello.txt"
    monkeypatch.setenv("REACTID_STORAGE_BACKEND", "gcs")
    with pytest.raises(ParamsError, match=r"storage\.backend"):
        load_params(tmp_path / "params.yaml")
