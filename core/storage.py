"""Object storage behind one small interface.

Keys are POSIX-style relative paths ("tables/raw_videos/demo-000.parquet"). The local
directory backend is the embedded default; S3-compatible stores (MinIO, AWS, lakeFS's S3
gateway) plug in behind the same methods (`core.storage_s3`). Both implement
`core.object_store.ObjectStore` and import nothing of each other; `open_store` picks one.
Every write is atomic: readers see either the old object or the whole new one, never a
partial file.

`open_params_store(params)` builds the store params `storage` names; that is how the CLI,
the Dagster resource and the demo get it, so stages only ever see this interface.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from core.errors import StorageError
from core.object_store import ObjectStore, check_key, location

__all__ = ["LocalObjectStore", "ObjectStore", "check_key", "current_scratch_root", "location", "open_params_store",
           "open_store", "scratch_root", "temp_dir"]

if TYPE_CHECKING:
    from core.params import Params


class LocalObjectStore:
    """A directory on the local filesystem as an object store.

    Args:
        root: directory holding the objects; created on first write.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        """Filesystem path of `key` (the object may not exist)."""
        return self.root / check_key(key)

    def filesystem_path(self, key: str) -> Path:
        """Every object of this store is a file: `key`'s path (the object may not exist)."""
        return self.path(key)

    @property
    def root_uri(self) -> str:
        return str(self.root)

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def _atomic_target(self, key: str) -> tuple[Path, Path]:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
        return dest, tmp

    def put_bytes(self, key: str, data: bytes) -> None:
        dest, tmp = self._atomic_target(key)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, key: str, src: Path) -> None:
        dest, tmp = self._atomic_target(key)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        """Yield a temporary path to write; it becomes `key` only if the block succeeds."""
        dest, tmp = self._atomic_target(key)
        try:
            yield tmp
            if not tmp.exists():
                raise StorageError(f"nothing was written for {key!r}")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def get_bytes(self, key: str) -> bytes:
        path = self.path(key)
        if not path.is_file():
            raise StorageError(f"object {key!r} not found under {self.root}")
        return path.read_bytes()

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix.rstrip("/"))
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        out = [
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ]
        return sorted(out)

    def delete_prefix(self, prefix: str) -> None:
        base = self.path(prefix.rstrip("/"))
        if base.is_dir():
            shutil.rmtree(base)
        elif base.exists():
            base.unlink()

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A readable local file for `key`; for this backend, the object itself."""
        path = self.path(key)
        if not path.is_file():
            raise StorageError(f"object {key!r} not found under {self.root}")
        yield path

    @contextlib.contextmanager
    def open_stream(self, key: str) -> Iterator[IO[bytes]]:
        """A seekable binary file object over `key` (PyAV opens it with `av.open(fileobj)`)."""
        path = self.path(key)
        if not path.is_file():
            raise StorageError(f"object {key!r} not found under {self.root}")
        with open(path, "rb") as fh:
            yield fh

    @contextlib.contextmanager
    def staged_prefix(self, prefix: str) -> Iterator[str]:
        """Write a whole prefix (e.g. a shard's clips) and publish it in one step.

        Yields a staging prefix to write into. On success the previous contents of
        `prefix` are replaced by the staged ones; on error the staging area is removed
        and `prefix` is left exactly as it was.
        """
        prefix = prefix.rstrip("/")
        final = self.path(prefix)
        staging_key = f"{prefix}.staging-{uuid.uuid4().hex[:8]}"
        staging = self.path(staging_key)
        staging.mkdir(parents=True, exist_ok=True)
        try:
            yield staging_key
            trash = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            if final.exists():
                os.replace(final, trash)
            os.replace(staging, final)
            if trash.exists():
                shutil.rmtree(trash)
        finally:
            if staging.exists():
                shutil.rmtree(staging)


def open_store(backend: str, root: str, s3: Any = None, *,
               credentials: tuple[str, str, str | None] | None = None) -> ObjectStore:
    """Build the store named by params `storage.backend`.

    Args:
        root: the local backend's directory.
        s3: params `storage.s3` (core.params.S3StorageParams), for backend "s3".
        credentials: S3 (access key, secret key, session token); default: from the
            environment (core.storage_s3.CREDENTIAL_ENV), never from params.
    """
    if backend == "local":
        return LocalObjectStore(root)
    if backend == "s3":
        from core.storage_s3 import S3ObjectStore

        return S3ObjectStore.from_params(s3, credentials=credentials)
    raise StorageError(f"storage.backend {backend!r} is not available in this build (expected local or s3)")


def open_params_store(params: Params, *, credentials: tuple[str, str, str | None] | None = None) -> ObjectStore:
    """The store params `storage` names (its backend already reflects the
    REACTID_STORAGE_BACKEND override applied by core.params.read_params)."""
    storage = params.storage
    return open_store(storage.backend, str(params.resolve(storage.root)), storage.s3, credentials=credentials)


# The scratch folder of the stage run in progress (core.stage.run_stage sets it): temp_dir
# creates its directories there, where the next run of the stage finds and removes them.
_SCRATCH_ROOT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("reactid_scratch_root", default=None)


@contextlib.contextmanager
def scratch_root(folder: Path) -> Iterator[Path]:
    """Make `temp_dir` create its directories under `folder` inside this block."""
    token = _SCRATCH_ROOT.set(folder)
    try:
        yield folder
    finally:
        _SCRATCH_ROOT.reset(token)


def current_scratch_root() -> Path | None:
    """The scratch folder `temp_dir` writes under now (None: the system temp folder)."""
    return _SCRATCH_ROOT.get()


def temp_dir(prefix: str = "reactid-") -> tempfile.TemporaryDirectory[str]:
    """A scratch directory for work files that never become objects: under the running
    stage's scratch folder, else the system temp folder."""
    root = _SCRATCH_ROOT.get()
    return tempfile.TemporaryDirectory(prefix=prefix, dir=root)
