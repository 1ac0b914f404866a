"""A lakeFS repository as the platform's data history.

- a training run works on its own branch, ``<branch_prefix><run_name>``, created from the
  main branch (:meth:`LakeFSVersioning.ensure_run_branch`);
- the annotation quality gate commits each validated shard to that branch, with metadata
  (run id, params hash, check results) (:meth:`LakeFSVersioning.commit_validated_shard`);
- a finished evaluation merges the branch into main and tags the merge commit
  (:meth:`LakeFSVersioning.promote`);
- :meth:`LakeFSVersioning.lineage` walks from a tag back to the data commits it promoted.

Talks to the server through the high-level ``lakefs`` SDK (``lakefs-sdk`` beneath). Every SDK
or connection error leaves as a :class:`core.errors.VersioningError` whose message names what
to fix: the credential variables on 401, the branch or tag on 409, the endpoint when the
server cannot be reached. Credentials come only from the environment and are never written
to metadata, messages or logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ParamsError, VersioningError
from versioning.params import LAKEFS_BRANCH_RE, LakeFSParams, check_lakefs_tag

ACCESS_KEY_ENV = "LAKEFS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "LAKEFS_SECRET_ACCESS_KEY"
META = "reactid."  # prefix of every commit-metadata key this module writes
KIND = META + "kind"
KIND_SHARD = "validated_shard"
KIND_PROMOTION = "promotion"
MAX_LINEAGE_STEPS = 10_000
# A connection that fails is retried after 0 s, then 2 x this (urllib3's backoff). Reads are
# retried only for idempotent methods: a POST that reached the server (create, upload, commit,
# merge, tag) is never re-sent, so a commit or merge never runs twice.
_CONNECT_BACKOFF_S = 0.2

log = logging.getLogger("reactid.versioning")


class LakeFSAuthError(VersioningError):
    """401: missing, wrong or insufficient credentials."""


class LakeFSConflictError(VersioningError):
    """409: a branch, merge or tag conflicts with what the repository holds."""


class LakeFSNotFoundError(VersioningError):
    """404: the repository, branch, tag or commit does not exist."""


class LakeFSUnreachableError(VersioningError):
    """No HTTP answer: the endpoint is wrong, down, or blocked."""


@dataclass(frozen=True)
class RunBranch:
    name: str
    commit_id: str  # the branch head after the call
    created: bool


@dataclass(frozen=True)
class ShardCommit:
    """Where a validated shard's files live in lakeFS.

    ``commit_id`` is the run branch's commit holding the files (a merge of the shard's own
    commit ``shard_commit_id``, which carries the metadata). When nothing changed since the
    last commit, no commit is made: ``created`` is False, ``commit_id`` is the branch head
    (which holds exactly these bytes) and ``shard_commit_id`` is None.
    """

    repository: str
    branch: str
    shard: str
    commit_id: str
    shard_commit_id: str | None
    created: bool
    uploaded: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "uploaded": list(self.uploaded)}


@dataclass(frozen=True)
class Promotion:
    repository: str
    branch: str  # the run branch that was merged
    into: str  # the main branch
    tag: str
    commit_id: str  # the merge commit on `into`, which the tag points at
    data_commit: str  # the run branch head that was merged: the data the evaluated models saw
    created: bool  # False: the tag already promoted this same data commit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShardLineage:
    shard: str
    commit_id: str  # run-branch commit that brought the shard in
    shard_commit_id: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class Lineage:
    """From a tag to the data: the promotion commit, the run branch head it merged, each shard
    commit on that branch (newest first, one per shard) and the commit the branch started from."""

    tag: str
    promotion_commit: str
    data_commit: str
    run_branch: str
    shards: tuple[ShardLineage, ...]
    base_commit: str | None  # first commit below the run's shard commits (the branch point)
    metadata: dict[str, str] = field(default_factory=dict)  # the promotion commit's metadata
    data_commit_is_parent: bool = True  # the merge commit's parents include data_commit

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["shards"] = [asdict(s) for s in self.shards]
        return out


def md5_hex(data: bytes) -> str:
    """lakeFS's checksum of an object uploaded in one part (the blockstore's MD5 ETag)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def metadata_value(value: Any) -> str:
    """Commit metadata is string -> string: JSON for containers, 'true'/'false' for booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def _server_message(error: Exception) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, (str, bytes)) and body:
        try:
            return str(json.loads(body).get("message") or body)
        except (ValueError, AttributeError):
            return body.decode(errors="replace") if isinstance(body, bytes) else body
    return str(getattr(error, "reason", None) or error)


class LakeFSVersioning:
    """Run branches, shard commits, promotions and lineage on one lakeFS repository.

    Args:
        settings: the ``lakefs`` section of params.yaml.
        env: where the credentials are read (default: ``os.environ``).
    """

    def __init__(self, settings: LakeFSParams, *, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        key, secret = env.get(ACCESS_KEY_ENV, ""), env.get(SECRET_KEY_ENV, "")
        if not key or not secret:
            missing = [name for name, value in ((ACCESS_KEY_ENV, key), (SECRET_KEY_ENV, secret)) if not value]
            raise LakeFSAuthError(
                f"lakefs.enabled is true but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                f"not set: export {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} with an access key of the lakeFS "
                f"server at {settings.endpoint} (credentials are never read from params.yaml)"
            )
        import lakefs

        self.settings = settings
        self._secrets = (key, secret)
        self._client = lakefs.Client(host=settings.endpoint, username=key, password=secret)
        _bound_requests(self._client, settings.timeout_s, settings.retries)
        self._repo = lakefs.repository(settings.repository, client=self._client)
        self._repo_checked = False

    def __repr__(self) -> str:  # never the credentials
        return f"LakeFSVersioning(endpoint={self.endpoint!r}, repository={self.repository!r})"

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @property
    def repository(self) -> str:
        return self.settings.repository

    # -- errors ---------------------------------------------------------------------------

    @contextmanager
    def _translate(self, action: str, *, branch: str | None = None, tag: str | None = None,
                   not_found: str | None = None) -> Iterator[None]:
        """Turn SDK, HTTP and connection errors into VersioningErrors that say what to fix."""
        import urllib3
        from lakefs import exceptions as lx

        where = f"lakeFS at {self.endpoint} (lakefs.endpoint), repository '{self.repository}'"
        try:
            # Calls made on the generated client raise lakefs_sdk.ApiException; this turns them
            # into the high-level SDK's exceptions, as its own methods do.
            with lx.api_exception_handler():
                yield
        except VersioningError:
            raise
        except lx.ServerException as e:
            if not e.status_code:  # lakefs-sdk reports TLS failures as status 0
                raise LakeFSUnreachableError(f"{action}: cannot reach {where}: {e.reason}") from e
            self._raise_for_status(e, action, where, branch=branch, tag=tag, not_found=not_found)
        except lx.LakeFSException as e:
            raise VersioningError(f"{action}: {where}: {e}") from e
        except urllib3.exceptions.HTTPError as e:
            reason = getattr(e, "reason", None) or e
            raise LakeFSUnreachableError(
                f"{action}: cannot reach {where}: {type(reason).__name__}: {reason}. Is the server up and "
                f"lakefs.endpoint right?"
            ) from e
        except _validation_errors() as e:
            raise VersioningError(
                f"{action}: {where} answered with a body the lakeFS SDK could not read ({e.__class__.__name__}); "
                "is lakefs.endpoint a lakeFS server?"
            ) from e

    def _raise_for_status(self, e: Exception, action: str, where: str, *, branch: str | None, tag: str | None,
                          not_found: str | None) -> None:
        from lakefs import exceptions as lx

        status, said = getattr(e, "status_code", None), _server_message(e)
        error: VersioningError
        if isinstance(e, lx.NotAuthorizedException):  # 401 (lakeFS also answers 401 for missing permissions)
            error = LakeFSAuthError(
                f"{action}: {where} answered {status} ({said}): the access key in {ACCESS_KEY_ENV} / "
                f"{SECRET_KEY_ENV} was rejected or may not do this; check both variables and the user's "
                f"policies on repository '{self.repository}'")
        elif isinstance(e, lx.ForbiddenException):
            error = VersioningError(f"{action}: {where} refused (403: {said}); a protected branch "
                                    f"{f'({branch!r}) ' if branch else ''}or a read-only repository?")
        elif isinstance(e, lx.ConflictException):
            subject = f"tag '{tag}'" if tag else f"branch '{branch}'" if branch else "the request"
            error = LakeFSConflictError(f"{action}: {where} reports a conflict on {subject} (409: {said})")
        elif isinstance(e, lx.NotFoundException):
            hint = not_found or (f"does branch '{branch}' exist?" if branch else
                                 f"does repository '{self.repository}' exist?")
            error = LakeFSNotFoundError(f"{action}: {where} answered 404 ({said}); {hint}")
        elif isinstance(e, lx.BadRequestException):
            error = VersioningError(f"{action}: {where} rejected the request (400: {said})")
        else:
            error = VersioningError(f"{action}: {where} answered {status}: {said}")
        raise error from e

    def _guard_metadata(self, metadata: Mapping[str, str]) -> None:
        """Refuse to send a credential as metadata (it would be readable by anyone with read access)."""
        for k, v in metadata.items():
            if any(s and (s in v or s in k) for s in self._secrets):
                raise VersioningError(f"commit metadata {k!r} contains a lakeFS credential; refusing to send it")

    # -- refs -----------------------------------------------------------------------------

    def check_repository(self) -> None:
        """Fail early, with a clear message, when the repository does not exist or is not readable."""
        if self._repo_checked:
            return
        with self._translate(f"open repository '{self.repository}'", not_found=(
                f"create it first, e.g. lakectl repo create lakefs://{self.repository} <storage namespace>")):
            self._repo.properties  # noqa: B018 - GET /repositories/{repository}
        self._repo_checked = True

    def branch_name(self, run_name: str) -> str:
        name = f"{self.settings.branch_prefix}{run_name}"
        if not re.fullmatch(LAKEFS_BRANCH_RE, name):
            raise VersioningError(f"run branch {name!r}: lakeFS branch ids match {LAKEFS_BRANCH_RE} (no '/')")
        return name

    def head(self, branch: str) -> str:
        """The commit id a branch points at."""
        with self._translate(f"read branch '{branch}'", branch=branch):
            return self._repo.branch(branch).head.id

    def ensure_run_branch(self, run_name: str | None = None) -> RunBranch:
        """The run's branch, created from the main branch when missing. Idempotent: an existing
        branch (also one created concurrently, answered 409) is kept as it is."""
        from lakefs.exceptions import ConflictException, NotFoundException

        self.check_repository()
        name = self.branch_name(run_name if run_name is not None else self.settings.run_name)
        main = self.settings.main_branch
        try:
            return RunBranch(name, self.head(name), created=False)
        except LakeFSNotFoundError:
            pass
        action = f"create branch '{name}' from '{main}'"
        missing_source = f"does the source branch '{main}' (lakefs.main_branch) exist?"
        with self._translate(action, branch=name, not_found=missing_source):
            try:
                self._repo.branch(name).create(source_reference=main, exist_ok=False)
                created = True
            except ConflictException as conflict:
                created = False  # 409: someone made it between our read and this create
                try:
                    self._repo.branch(name).head  # noqa: B018 - it must exist now
                except NotFoundException:
                    raise LakeFSConflictError(
                        f"{action}: lakeFS at {self.endpoint} answered 409 ({_server_message(conflict)}) but "
                        f"branch '{name}' cannot be read; is it being deleted? Retry, or pick another "
                        f"lakefs.run_name") from conflict
        log.info("lakeFS run branch %s %s", name, "created" if created else "exists")
        return RunBranch(name, self.head(name), created=created)

    # -- shard commits --------------------------------------------------------------------

    def object_path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/") or not key:
            raise VersioningError(f"object key {key!r}: expected a relative path without '..'")
        return f"{self.settings.data_prefix}{key}"

    def _checksum(self, ref: str, path: str) -> str | None:
        from lakefs.exceptions import NotFoundException

        with self._translate(f"stat '{path}' on '{ref}'", branch=ref):
            try:
                return self._repo.ref(ref).object(path).stat().checksum
            except NotFoundException:
                return None

    def commit_validated_shard(self, branch: str, shard: str, files: Mapping[str, str | os.PathLike | bytes],
                               metadata: Mapping[str, Any]) -> ShardCommit:
        """Upload a validated shard's files and commit them to the run branch with metadata.

        The files go to a short-lived branch made from ``branch``, are committed there (the
        commit carries the metadata), merged into ``branch`` (the merge carries it too) and the
        short-lived branch is deleted; so shards gated at the same time never commit each
        other's uploads. Files whose bytes the branch already holds (same MD5 checksum) are not
        sent; when none changed, nothing is committed.

        Args:
            branch: the run branch (:meth:`ensure_run_branch`).
            shard: the shard name.
            files: store key (becomes ``<data_prefix><key>``) -> local path or bytes.
            metadata: e.g. run_id, params_hash, check results; keys get the ``reactid.`` prefix,
                values become strings (JSON for containers).
        """
        from lakefs.exceptions import BadRequestException

        self.check_repository()
        meta = {KIND: KIND_SHARD, META + "run_branch": branch, META + "shard": shard}
        meta.update({k if k.startswith(META) else META + k: metadata_value(v) for k, v in metadata.items()})
        self._guard_metadata(meta)
        payloads = {self.object_path(k): v if isinstance(v, bytes) else Path(v).read_bytes()
                    for k, v in sorted(files.items())}
        changed = [p for p, data in payloads.items() if self._checksum(branch, p) != md5_hex(data)]
        if not changed:
            log.info("lakeFS: shard %s unchanged on %s; nothing committed", shard, branch)
            return ShardCommit(self.repository, branch, shard, self.head(branch), None, created=False)

        tx = f"{branch}-tx-{uuid.uuid4().hex[:12]}"
        with self._translate(f"create branch '{tx}' from '{branch}'", branch=branch):
            tx_branch = self._repo.branch(tx).create(source_reference=branch, hidden=True)
        try:
            for path in changed:
                with self._translate(f"upload '{path}' to '{tx}'", branch=tx):
                    tx_branch.object(path).upload(payloads[path], mode="wb", pre_sign=self.settings.pre_sign,
                                                  content_type=_content_type(path))
            message = f"Validated shard {shard}: {len(changed)} file(s) passed the annotation quality gates"
            with self._translate(f"commit shard '{shard}' on '{tx}'", branch=tx):
                try:
                    shard_commit = tx_branch.commit(message, metadata=meta).id
                except BadRequestException as e:
                    if "no changes" not in _server_message(e):
                        raise
                    log.info("lakeFS: shard %s has no changes on %s; nothing committed", shard, branch)
                    return ShardCommit(self.repository, branch, shard, self.head(branch), None, created=False)
            with self._translate(f"merge shard '{shard}' into branch '{branch}'", branch=branch):
                merged = tx_branch.merge_into(branch, message=message,
                                              metadata={**meta, META + "shard_commit": shard_commit})
        finally:
            self._delete_quietly(tx)
        log.info("lakeFS: shard %s committed to %s as %s", shard, branch, merged)
        return ShardCommit(self.repository, branch, shard, merged, shard_commit, created=True,
                           uploaded=tuple(changed))

    def _delete_quietly(self, branch: str) -> None:
        try:
            with self._translate(f"delete branch '{branch}'", branch=branch):
                self._repo.branch(branch).delete()
        except VersioningError as e:  # a leftover short-lived branch is harmless; say so and go on
            log.warning("lakeFS: could not delete short-lived branch %s: %s", branch, e)

    # -- promotion and lineage ------------------------------------------------------------

    def get_commit(self, ref: str) -> Any:
        """The commit a ref (commit id, branch or tag) resolves to (``lakefs.Commit``)."""
        with self._translate(f"read commit '{ref}'", not_found=f"no commit, branch or tag '{ref}'"):
            return self._repo.ref(ref).get_commit()

    def _tag_target(self, tag: str) -> str | None:
        from lakefs.exceptions import NotFoundException, api_exception_handler

        with self._translate(f"read tag '{tag}'", tag=tag):
            try:
                with api_exception_handler():  # GET /repositories/{repository}/tags/{tag}
                    return self._client.sdk_client.tags_api.get_tag(self.repository, tag).commit_id
            except NotFoundException:
                return None

    def newest_on_branch(self, branch: str, commit_ids: Iterable[str]) -> str:
        """The newest of ``commit_ids`` in ``branch``'s history: the commit whose history holds
        every one of them (shard commits land on a run branch one merge after another).

        Raises:
            VersioningError: naming the commits that are not in the branch's history.
        """
        wanted = set(commit_ids)
        if not wanted:
            raise VersioningError(f"no commit given to look up on branch '{branch}'")
        newest, missing = None, set(wanted)
        with self._translate(f"read the log of branch '{branch}'", branch=branch):
            for commit in self._repo.ref(branch).log():
                if commit.id in missing:
                    newest = newest or commit.id
                    missing.discard(commit.id)
                    if not missing:
                        break
        if missing:
            raise VersioningError(f"commits {sorted(missing)} are not in the history of branch '{branch}' of "
                                  f"repository '{self.repository}'")
        return newest

    def promote(self, branch: str, tag: str, metadata: Mapping[str, Any] | None = None, *,
                data_commit: str | None = None) -> Promotion:
        """Merge the run branch, up to ``data_commit``, into the main branch and tag the merge.

        Args:
            data_commit: the run-branch commit holding the data the evaluated models saw
                (``versioning.hooks.training_data_commit``); default the branch head. Shards
                committed to the branch after it are not promoted.

        The merge commit's metadata records it (``reactid.data_commit``). Idempotent: when
        ``tag`` already points at a promotion of that same data commit, nothing is done; a tag
        that points elsewhere is a :class:`LakeFSConflictError` naming it.
        """
        from lakefs.exceptions import ConflictException

        try:
            check_lakefs_tag(tag)
        except ParamsError as e:
            raise VersioningError(str(e)) from None
        self.check_repository()
        main = self.settings.main_branch
        data_commit = data_commit or self.head(branch)
        existing = self._existing_promotion(tag, branch, data_commit)
        if existing:
            return existing
        meta = {KIND: KIND_PROMOTION, META + "run_branch": branch, META + "data_commit": data_commit,
                META + "tag": tag}
        meta.update({k if k.startswith(META) else META + k: metadata_value(v) for k, v in (metadata or {}).items()})
        self._guard_metadata(meta)
        with self._translate(f"merge branch '{branch}' into '{main}'", branch=branch):
            # The commit id, not the branch name: a shard committed meanwhile is not promoted unseen.
            merged = self._repo.commit(data_commit).merge_into(
                main, message=f"Promote {branch} as {tag}", metadata=meta, allow_empty=True)
        with self._translate(f"create tag '{tag}' on {merged}", tag=tag):
            try:
                self._repo.tag(tag).create(merged)
            except ConflictException:
                existing = self._existing_promotion(tag, branch, data_commit)
                if existing is None:
                    raise
                return existing
        log.info("lakeFS: promoted %s into %s as tag %s (%s)", branch, main, tag, merged)
        return Promotion(self.repository, branch, main, tag, merged, data_commit, created=True)

    def _existing_promotion(self, tag: str, branch: str, data_commit: str) -> Promotion | None:
        target = self._tag_target(tag)
        if target is None:
            return None
        meta = self.get_commit(target).metadata or {}
        if meta.get(KIND) == KIND_PROMOTION and meta.get(META + "data_commit") == data_commit:
            return Promotion(self.repository, branch, self.settings.main_branch, tag, target, data_commit,
                             created=False)
        raise LakeFSConflictError(
            f"tag '{tag}' already exists in repository '{self.repository}' on commit {target}, which is not a "
            f"promotion of branch '{branch}' at {data_commit} (it promoted "
            f"{meta.get(META + 'data_commit', 'nothing this platform made')}); pick another tag or delete it"
        )

    def lineage(self, tag: str) -> Lineage:
        """From a promotion tag back to the data commits it promoted."""
        commit = self.get_commit(tag)
        meta = dict(commit.metadata or {})
        if meta.get(KIND) != KIND_PROMOTION or META + "data_commit" not in meta:
            raise VersioningError(f"tag '{tag}' points at commit {commit.id}, which is not a promotion made by "
                                  f"this platform (no {KIND}={KIND_PROMOTION} metadata)")
        data_commit, branch = meta[META + "data_commit"], meta.get(META + "run_branch", "")
        shards: list[ShardLineage] = []
        seen: set[str] = set()
        current: str | None = data_commit
        for _ in range(MAX_LINEAGE_STEPS):
            if current is None:
                break
            c = self.get_commit(current)
            m = dict(c.metadata or {})
            if m.get(KIND) != KIND_SHARD or m.get(META + "run_branch") != branch:
                break
            shard = m.get(META + "shard", "")
            if shard not in seen:
                seen.add(shard)
                shards.append(ShardLineage(shard, c.id, m.get(META + "shard_commit"), m))
            current = c.parents[0] if c.parents else None
        return Lineage(tag, commit.id, data_commit, branch, tuple(shards), current, meta,
                       data_commit_is_parent=data_commit in (commit.parents or []))


def _content_type(path: str) -> str:
    return {"json": "application/json", "parquet": "application/vnd.apache.parquet"}.get(
        path.rsplit(".", 1)[-1], "application/octet-stream")


def _validation_errors() -> tuple[type[Exception], ...]:
    import pydantic

    errors: list[type[Exception]] = [pydantic.ValidationError]
    try:
        from pydantic import v1

        errors.append(v1.ValidationError)
    except ImportError:  # pragma: no cover - pydantic 1 itself
        pass
    return tuple(errors)


def _bound_requests(client: Any, timeout_s: float, retries: int) -> None:
    """Give every request of this client a timeout and connect-only retries.

    lakefs-sdk sends ``timeout=None`` (wait forever) unless each call passes
    ``_request_timeout``, which the high-level SDK does not; so the pool manager that all its
    APIs share (also used directly for uploads) fills both in.
    """
    import urllib3

    pool = client.sdk_client.objects_api.api_client.rest_client.pool_manager
    timeout = urllib3.Timeout(connect=min(timeout_s, 10.0), read=timeout_s)
    retry = urllib3.Retry(total=retries, connect=retries, read=retries, status=0, other=0, redirect=0,
                          allowed_methods=urllib3.Retry.DEFAULT_ALLOWED_METHODS,  # not POST
                          backoff_factor=_CONNECT_BACKOFF_S, raise_on_status=False)
    urlopen = pool.urlopen

    def bounded_urlopen(method, url, redirect=True, **kw):
        if kw.get("timeout") is None:
            kw["timeout"] = timeout
        kw.setdefault("retries", retry)
        return urlopen(method, url, redirect=redirect, **kw)

    pool.urlopen = bounded_urlopen
