"""The interface every storage backend implements, and what all of them share.

Keys are POSIX-style relative paths ("tables/raw_videos/demo-000.parquet"; their patterns
are owned by core.layout). The backends (core.storage's local directory, core.storage_s3's
S3-compatible bucket) import this module and nothing of each other; core.storage picks one.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import IO, Protocol

from core.errors import StorageError


def check_key(key: str) -> str:
    """`key` if it is a relative POSIX path without empty, '.' or '..' segments.

    Raises:
        StorageError: naming the key and what is wrong with it.
    """
    if not key or key.startswith("/") or "\\" in key:
        raise StorageError(f"invalid object key {key!r}: expected a relative POSIX path")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid object key {key!r}: empty, '.' or '..' segment")
    return key


class ObjectStore(Protocol):
    """What every storage backend offers to stages."""

    @property
    def root_uri(self) -> str: ...
    def uri(self, key: str) -> str: ...
    def exists(self, key: str) -> bool: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, src: Path) -> None: ...
    def writer(self, key: str) -> contextlib.AbstractContextManager[Path]: ...
    def get_bytes(self, key: str) -> bytes: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def local_path(self, key: str) -> contextlib.AbstractContextManager[Path]: ...
    def open_stream(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def staged_prefix(self, prefix: str) -> contextlib.AbstractContextManager[str]: ...

    def filesystem_path(self, key: str) -> Path | None:
        """Where `key` lives on this machine's filesystem, when the store keeps its objects
        as plain files there (the object may not exist yet), else None.

        A path means a program may read and write the key in place (a training run works in
        its run folder directly, a report names the file); None means objects are reached
        only through this interface (copy a prefix to a scratch folder, name the URI).
        """
        ...


def location(store: ObjectStore, key: str) -> str:
    """Where `key` is, for people: a file path on a filesystem store, else the object's URI."""
    path = store.filesystem_path(key)
    return str(path) if path is not None else store.uri(key)
