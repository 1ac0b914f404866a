"""S3-compatible object storage (MinIO, AWS S3, lakeFS's S3 gateway, moto) behind `ObjectStore`.

Selected by params `storage.backend: s3` (or env `REACTID_STORAGE_BACKEND=s3`); the
non-secret settings live in params `storage.s3` (endpoint, bucket, prefix, secure, region,
part_size_mb). Credentials come only from the environment (`CREDENTIAL_ENV`): they are
never read from params, never stored on the store object, and never appear in its
`repr`, in error messages, metadata or reports.

Keys map to object names `<prefix>/<key>` in the bucket.

Atomicity on S3
---------------
* One PUT, and one CompleteMultipartUpload, is atomic: a reader sees the old object or the
  whole new one. `put_bytes`/`put_file` upload in one request, or as a multipart upload of
  `part_size_mb` parts for larger files; a failed multipart upload is aborted by the client,
  so it never becomes an object. `abort_incomplete_uploads` removes the parts a killed
  process left behind (a bucket lifecycle rule `AbortIncompleteMultipartUpload` does the
  same server-side).
* `writer(key)` yields a local temporary file and uploads it only when the block succeeds.
* `staged_prefix(prefix)`: S3 has no rename, so publishing a prefix is not one atomic step.
  Objects are written under a sibling staging prefix; on success each is copied (server-side)
  to the final prefix, then objects of the previous generation that were not rewritten are
  deleted, then the staging prefix is removed. While this runs a reader *listing* the
  prefix can see a mix of generations. No stage reads a prefix by listing it: readers
  follow the keys in a stage's table, and trust a stage's outputs only through its
  completion marker `metrics/<stage>/<shard>.json`, which `core.stage.run_stage` deletes
  before the stage starts and writes last, after the prefix is published and the table is
  written. A crash mid-publish therefore leaves no marker and the next run redoes the stage.
"""

from __future__ import annotations

import contextlib
import io
import mimetypes
import os
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import StorageError
from core.object_store import check_key

if TYPE_CHECKING:
    from minio import Minio

# (access key, secret key, session token) environment variables, in order of preference:
# the project's own names, then the AWS SDK's.
CREDENTIAL_ENV: tuple[tuple[str, str, str], ...] = (
    ("REACTID_S3_ACCESS_KEY", "REACTID_S3_SECRET_KEY", "REACTID_S3_SESSION_TOKEN"),
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
)
MIB = 1024 * 1024
# Error codes S3-compatible servers answer for a key that is not there (AWS, MinIO, moto).
_MISSING = ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound")
# S3 limits: parts of a multipart upload are 5 MiB .. 5 GiB (the last may be smaller), and
# a single server-side CopyObject handles at most 5 GiB.
MIN_PART_MB = 5
MAX_PART_MB = 5 * 1024
_MAX_SINGLE_COPY = 5 * 1024 * MIB
# Ranged reads of `open_stream` fetch aligned blocks of this size (a small clip in one request)
# and keep the last STREAM_CACHE_BLOCKS of them: demuxers seek back and forth (an MP4's index
# sits at its end), and a block already fetched is never fetched again while it is cached.
STREAM_BLOCK = 1 * MIB
STREAM_CACHE_BLOCKS = 16


def credential_env_names(env: Mapping[str, str] | None = None) -> tuple[str, str, str | None] | None:
    """Names of the environment variables that hold the S3 credentials, or None.

    The access and secret key come from the same family (REACTID_S3_* or AWS_*); the
    session token is optional.
    """
    env = os.environ if env is None else env
    for access, secret, token in CREDENTIAL_ENV:
        if env.get(access) and env.get(secret):
            return access, secret, token if env.get(token) else None
    return None


def _missing_credentials() -> StorageError:
    names = " or ".join(f"{a} and {s}" for a, s, _ in CREDENTIAL_ENV)
    return StorageError(
        f"storage.backend is s3 but no S3 credentials are set: export {names} "
        "(credentials are read only from the environment, never from params.yaml)"
    )


def credentials_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str, str | None]:
    """(access key, secret key, session token) from the environment.

    Raises:
        StorageError: naming the variables to set when none of the pairs is set.
    """
    env = os.environ if env is None else env
    names = credential_env_names(env)
    if names is None:
        raise _missing_credentials()
    access, secret, token = names
    return env[access], env[secret], env[token] if token else None


def _redactor(*secrets: str | None) -> Callable[[str], str]:
    values = [s for s in secrets if s]

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "***")
        return text

    return redact


class _RangeReader(io.RawIOBase):
    """A seekable read-only view of one object, served by HTTP range requests of whole
    aligned blocks, the most recent of which are cached (LRU)."""

    def __init__(self, client: Minio, bucket: str, name: str, size: int, uri: str,
                 fail: Callable[[Exception, str], StorageError], block: int = STREAM_BLOCK,
                 cache_blocks: int = STREAM_CACHE_BLOCKS) -> None:
        self._client, self._bucket, self._name, self._size = client, bucket, name, size
        self._pos = 0
        self._fail = fail
        self._block, self._cache_blocks = block, cache_blocks
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self.requests = 0  # range GETs sent (for benchmarks and tests)
        self.name = uri

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def _fetch(self, index: int) -> bytes:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        start = index * self._block
        length = min(self._block, self._size - start)
        try:
            response = self._client.get_object(self._bucket, self._name, offset=start, length=length)
            try:
                data = response.read()
            finally:
                response.close()
                response.release_conn()
        except Exception as exc:  # noqa: BLE001 - re-raised as StorageError without secrets
            raise self._fail(exc, f"read {self.name}") from None
        self.requests += 1
        self._cache[index] = data
        while len(self._cache) > self._cache_blocks:
            self._cache.popitem(last=False)
        return data

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size or not len(buffer):
            return 0
        index, offset = divmod(self._pos, self._block)
        data = self._fetch(index)
        n = min(len(buffer), len(data) - offset)
        buffer[:n] = data[offset:offset + n]
        self._pos += n
        return n


class S3ObjectStore:
    """A bucket (and key prefix) of an S3-compatible server as an object store.

    Args:
        endpoint: host[:port] of the server, without scheme ("s3.amazonaws.com",
            "minio.internal:9000").
        bucket: an existing bucket.
        prefix: key prefix inside the bucket ("" for the bucket root).
        secure: HTTPS when true.
        region: the bucket's region (None lets the client ask the server).
        part_size_mb: files larger than this upload as multipart in parts of this size.
        credentials: (access key, secret key, session token); default: from the
            environment (`CREDENTIAL_ENV`). They go to the client only.
    """

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        prefix: str = "",
        *,
        secure: bool = True,
        region: str | None = None,
        part_size_mb: int = 64,
        credentials: tuple[str, str, str | None] | None = None,
    ) -> None:
        from minio import Minio

        if not MIN_PART_MB <= part_size_mb <= MAX_PART_MB:
            raise StorageError(f"storage.s3.part_size_mb: expected {MIN_PART_MB}..{MAX_PART_MB}, got {part_size_mb}")
        access, secret, token = credentials if credentials is not None else credentials_from_env()
        if not access or not secret:
            raise _missing_credentials()
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.secure = secure
        self.region = region
        self.part_size = part_size_mb * MIB
        self._redact = _redactor(access, secret, token)
        self._client = Minio(endpoint, access_key=access, secret_key=secret, session_token=token,
                             secure=secure, region=region)

    @classmethod
    def from_params(cls, s3: Any, credentials: tuple[str, str, str | None] | None = None) -> S3ObjectStore:
        """Build from params `storage.s3` (core.params.S3StorageParams)."""
        if s3 is None or not getattr(s3, "bucket", None):
            raise StorageError("storage.s3.bucket: required when storage.backend is s3")
        return cls(s3.endpoint, s3.bucket, s3.prefix, secure=s3.secure, region=s3.region,
                   part_size_mb=s3.part_size_mb, credentials=credentials)

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"S3ObjectStore({scheme}://{self.endpoint}, {self.root_uri})"

    __str__ = __repr__

    def __reduce__(self):  # a pickled store would carry the client and its credentials
        raise TypeError("S3ObjectStore cannot be pickled (it holds credentials); build one per process")

    # ------------------------------------------------------------------ names

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    @property
    def root_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(key)}"

    def filesystem_path(self, key: str) -> None:
        """Objects live in the bucket, never as local files: always None."""
        self._name(key)
        return None

    def _fail(self, exc: Exception, what: str) -> StorageError:
        """A StorageError for a failed request: code and message, never credentials."""
        from minio.error import S3Error

        if isinstance(exc, S3Error):
            if exc.code == "NoSuchBucket":
                detail = (f"bucket {self.bucket!r} does not exist at {self.endpoint} (storage.s3.bucket); "
                          "create it first")
            else:
                detail = f"{exc.code}: {exc.message}"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return StorageError(self._redact(f"s3 {what} failed: {detail}"))

    # ------------------------------------------------------------------ reads

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self._client.stat_object(self.bucket, self._name(key))
            return True
        except S3Error as exc:
            if exc.code in _MISSING:
                return False
            raise self._fail(exc, f"stat {self.uri(key)}") from None
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"stat {self.uri(key)}") from None

    @contextlib.contextmanager
    def _reading(self, key: str, what: str) -> Iterator[None]:
        """Turn a failed read of `key` into a StorageError: "not found" for a missing object,
        else the request's code and message (never credentials)."""
        from minio.error import S3Error

        try:
            yield
        except S3Error as exc:
            if exc.code in _MISSING:
                raise StorageError(f"object {key!r} not found under {self.root_uri}") from None
            raise self._fail(exc, f"{what} {self.uri(key)}") from None
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"{what} {self.uri(key)}") from None

    def _size(self, key: str) -> int:
        with self._reading(key, "stat"):
            return int(self._client.stat_object(self.bucket, self._name(key)).size or 0)

    def get_bytes(self, key: str) -> bytes:
        with self._reading(key, "get"):
            response = self._client.get_object(self.bucket, self._name(key))
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    @contextlib.contextmanager
    def open_stream(self, key: str) -> Iterator[io.BufferedReader]:
        """A seekable binary file object over the object, read with ranged GETs (no local
        copy); PyAV opens it directly (`av.open(fileobj)`)."""
        size = self._size(key)
        # The raw reader caches whole blocks; the buffer on top only saves small reads a call.
        reader = io.BufferedReader(
            _RangeReader(self._client, self.bucket, self._name(key), size, self.uri(key), self._fail),
            buffer_size=64 * 1024,
        )
        try:
            yield reader
        finally:
            reader.close()

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A local temporary copy of the object (for readers that need a file name);
        removed when the block ends."""
        suffix = Path(key).suffix
        with tempfile.TemporaryDirectory(prefix="reactid-s3-") as tmp:
            path = Path(tmp) / f"object{suffix}"
            with self._reading(key, "download"):
                self._client.fget_object(self.bucket, self._name(key), str(path))
            yield path

    def list(self, prefix: str) -> list[str]:
        """Keys equal to `prefix` or under `prefix/` (like a directory), sorted."""
        prefix = prefix.rstrip("/")
        name = self._name(prefix)
        try:
            out = [self._key(o.object_name) for o in self._client.list_objects(self.bucket, prefix=f"{name}/", recursive=True)
                   if not o.is_dir and not o.object_name.rsplit("/", 1)[-1].startswith(".")]
            if not out and self.exists(prefix):
                return [prefix]
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"list {self.uri(prefix)}") from None
        return sorted(out)

    # ------------------------------------------------------------------ writes

    def _put(self, key: str, upload: Callable[[str, str], Any]) -> Any:
        name = self._name(key)
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        try:
            return upload(name, content_type)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"put {self.uri(key)}") from None

    def put_bytes(self, key: str, data: bytes) -> None:
        self._put(key, lambda name, ct: self._client.put_object(
            self.bucket, name, io.BytesIO(data), len(data), content_type=ct, part_size=self.part_size))

    def put_file(self, key: str, src: Path) -> Any:
        """Upload a local file; multipart (parts of `part_size_mb`) when it is larger than one
        part. Returns the client's write result (its `etag` ends in `-<parts>` for multipart)."""
        if not Path(src).is_file():
            raise StorageError(f"cannot upload {key!r}: {src} is not a file")
        return self._put(key, lambda name, ct: self._client.fput_object(
            self.bucket, name, str(src), content_type=ct, part_size=self.part_size))

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        """Yield a local temporary path to write; it is uploaded as `key` only if the block
        succeeds. A failure leaves no object (and no partial upload)."""
        self._name(key)
        with tempfile.TemporaryDirectory(prefix="reactid-s3w-") as tmp:
            path = Path(tmp) / f"pending{Path(key).suffix}"
            yield path
            if not path.exists():
                raise StorageError(f"nothing was written for {key!r}")
            self.put_file(key, path)

    def _delete_names(self, names: list[str]) -> None:
        from minio.deleteobjects import DeleteObject

        for start in range(0, len(names), 1000):
            errors = list(self._client.remove_objects(self.bucket, [DeleteObject(n) for n in names[start:start + 1000]]))
            if errors:
                first = errors[0]
                raise StorageError(f"s3 delete failed for {len(errors)} objects, first {first.name}: {first.code}")

    def delete_prefix(self, prefix: str) -> None:
        """Delete the object `prefix` and every object under `prefix/`."""
        prefix = prefix.rstrip("/")
        name = self._name(prefix)
        try:
            names = [o.object_name for o in self._client.list_objects(self.bucket, prefix=f"{name}/", recursive=True)]
            if self.exists(prefix):
                names.append(name)
            self._delete_names(names)
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"delete {self.uri(prefix)}") from None

    def _copy(self, src_name: str, dest_name: str, size: int) -> None:
        from minio.commonconfig import ComposeSource, CopySource

        if size > _MAX_SINGLE_COPY:  # server-side multipart copy
            self._client.compose_object(self.bucket, dest_name, [ComposeSource(self.bucket, src_name)])
        else:
            self._client.copy_object(self.bucket, dest_name, CopySource(self.bucket, src_name))

    @contextlib.contextmanager
    def staged_prefix(self, prefix: str) -> Iterator[str]:
        """Write a whole prefix under a staging prefix, then publish it (see the module
        docstring: copy, delete stale objects, drop the staging prefix).

        On error the staging objects are removed and `prefix` is left exactly as it was.
        """
        prefix = prefix.rstrip("/")
        staging_key = f"{prefix}.staging-{uuid.uuid4().hex[:8]}"
        staging_name = self._name(staging_key)
        final_name = self._name(prefix)
        try:
            yield staging_key
            try:
                staged = {o.object_name[len(staging_name) + 1 :]: int(o.size or 0)
                          for o in self._client.list_objects(self.bucket, prefix=f"{staging_name}/", recursive=True)}
                old = [o.object_name for o in self._client.list_objects(self.bucket, prefix=f"{final_name}/", recursive=True)]
                for rel, size in sorted(staged.items()):
                    self._copy(f"{staging_name}/{rel}", f"{final_name}/{rel}", size)
                stale = [n for n in old if n[len(final_name) + 1 :] not in staged]
                self._delete_names(stale)
            except StorageError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._fail(exc, f"publish {self.uri(prefix)}") from None
        finally:
            with contextlib.suppress(Exception):
                self.delete_prefix(staging_key)

    def abort_incomplete_uploads(self, prefix: str = "", *, min_age_s: float = 24 * 3600) -> int:
        """Abort multipart uploads left by processes that died mid-upload (under `prefix`,
        or the whole store prefix) and started at least `min_age_s` ago, so that uploads
        in progress elsewhere are left alone; returns how many were aborted. Incomplete
        uploads are never visible as objects, but their parts are stored (and billed)
        until aborted."""
        import datetime as dt

        name = self._name(prefix.rstrip("/")) if prefix else self.prefix
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=min_age_s)
        aborted = 0
        try:
            # Aborted uploads drop out of the listing, so list again from the start while the
            # server reports more (minio 7.2 does not parse NextUploadIdMarker).
            while True:
                result = self._client._list_multipart_uploads(  # noqa: SLF001 - no public API in minio 7.2
                    self.bucket, prefix=name or None, max_uploads=1000,
                )
                old = [u for u in result.uploads if u.initiated_time is None or u.initiated_time <= cutoff]
                for upload in old:
                    self._client._abort_multipart_upload(self.bucket, upload.object_name, upload.upload_id)  # noqa: SLF001
                    aborted += 1
                if not result.is_truncated or not old:
                    return aborted
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"abort incomplete uploads under {self.root_uri}/{prefix}") from None
