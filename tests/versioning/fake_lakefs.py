"""A small lakeFS REST API (v1) server on 127.0.0.1, for tests at the HTTP boundary.

No lakeFS server can be installed here (NOTES-deps), so this answers the endpoints the
``lakefs`` SDK calls, with the status codes and response bodies of lakeFS's OpenAPI spec
(``api/swagger.yml`` of treeverse/lakeFS at :data:`SPEC_COMMIT`, v1.84.0-3-g71a45eeb1)
and the server behaviour its controller implements:

- Basic auth on every call; otherwise 401 ``{"message": "error authenticating request"}``.
- Branch ids must match ``^\\w[-\\w]*$``, repository ids ``^[a-z0-9][a-z0-9-]{2,62}$``, tag ids
  git's ref rules (pkg/validator/validate.go, pkg/graveler/validate.go): else 400.
- createBranch answers 201 with the source commit id as ``text/html``; an existing branch 409.
- A commit with nothing staged: 400 ``commit: no changes`` (graveler.ErrNoChanges).
- A merge always makes a merge commit, parents ``[destination head, source commit]``;
  a destination with uncommitted changes is 400 (ErrDirtyBranch); nothing to merge is
  400 ``no changes`` unless ``allow_empty``; both sides changed a path: 409 with a
  ``MergeResult`` body (the spec's 409 schema for merges, not ``Error``).
- Objects uploaded in one part get the MD5 hex of their bytes as checksum.

It is a stand-in for what the spec documents, not lakeFS: no auth policies, no hooks,
no garbage collection, no pre-signed staging. Every response it sends is checked against
the spec's required fields (:data:`REQUIRED`); a violation lands in ``server.errors``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SPEC_COMMIT = "71a45eeb1639d146d34b8effd7e86d077160ed7c"
API = "/api/v1"

# components.schemas.<name>.required in api/swagger.yml at SPEC_COMMIT.
REQUIRED: dict[str, tuple[str, ...]] = {
    "Repository": ("creation_date", "id", "default_branch", "storage_namespace"),
    "Ref": ("id", "commit_id"),
    "RefList": ("pagination", "results"),
    "Commit": ("id", "parents", "committer", "message", "creation_date", "meta_range_id"),
    "CommitList": ("pagination", "results"),
    "ObjectStats": ("checksum", "physical_address", "path", "path_type", "mtime"),
    "MergeResult": ("reference",),
    "Diff": ("type", "path", "path_type"),
    "DiffList": ("pagination", "results"),
    "Pagination": ("has_more", "max_per_page", "results", "next_offset"),
    "Error": ("message",),
    "StorageConfig": ("blockstore_type", "blockstore_namespace_example", "blockstore_namespace_ValidityRegex",
                      "pre_sign_support", "pre_sign_support_ui", "import_support", "import_validity_regex"),
}
ITEM_SCHEMA = {"RefList": "Ref", "CommitList": "Commit", "DiffList": "Diff"}

BRANCH_RE = re.compile(r"^\w[-\w]*$")
REPO_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")


def valid_tag(tag: str) -> bool:
    return bool(tag) and tag != "@" and not tag.endswith((".", ".lock")) and not any(
        s in tag for s in ("..", "/", "@{")) and not re.search(r"[\^:?*\[\\\s\x00-\x1f\x7f]", tag)


@dataclass
class Recorded:
    method: str
    path: str  # below /api/v1, percent-decoded
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    message: str
    times: int = 1


@dataclass
class Branch:
    head: str
    staging: dict[str, dict | None] = field(default_factory=dict)  # path -> entry, None = deleted
    hidden: bool = False


@dataclass
class Repo:
    id: str
    default_branch: str
    storage_namespace: str
    creation_date: int
    commits: dict[str, dict] = field(default_factory=dict)
    branches: dict[str, Branch] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, message: str, body: dict | None = None, schema: str = "Error") -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.body, self.schema = body if body is not None else {"message": message}, schema


class FakeLakeFS:
    """Start with :meth:`start`; ``endpoint`` is then ``http://127.0.0.1:<port>``."""

    def __init__(self, access_key: str, secret_key: str, user: str = "reactid-test") -> None:
        self.access_key, self.secret_key, self.user = access_key, secret_key, user
        self.requests: list[Recorded] = []
        self.errors: list[str] = []
        self.faults: list[Fault] = []
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count()
        self._httpd: ThreadingHTTPServer | None = None
        self.endpoint = ""

    # -- control ---------------------------------------------------------------------------

    def start(self) -> FakeLakeFS:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server._handle(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def create_repository(self, name: str, default_branch: str = "main") -> Repo:
        with self._lock:
            repo = Repo(name, default_branch, f"local://lakefs/{name}", int(time.time()))
            first = self._new_commit(repo, parents=[], message="Repository created", metadata={}, tree={})
            repo.branches[default_branch] = Branch(first)
            self.repos[name] = repo
            return repo

    def fail(self, method: str, path_regex: str, status: int, message: str, times: int = 1) -> None:
        """Answer the next `times` matching calls with `status` and an Error body."""
        self.faults.append(Fault(method, re.compile(path_regex), status, message, times))

    def calls(self, method: str | None = None, path_regex: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method)
                and (path_regex is None or re.fullmatch(path_regex, r.path))]

    def tree(self, repo: str, ref: str) -> dict[str, bytes]:
        """path -> bytes of a ref's view (a branch includes its staged changes)."""
        with self._lock:
            r = self.repos[repo]
            return {p: self.blobs[e["physical_address"]] for p, e in self._view(r, ref).items()}

    # -- HTTP --------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        body = self._read_body(h)
        rec = Recorded(h.command, unquote(url.path.removeprefix(API)), parse_qs(url.query),
                       dict(h.headers.items()), body)
        with self._lock:
            self.requests.append(rec)
        status, payload, schema, ctype = 500, {"message": "internal"}, "Error", "application/json"
        try:
            if not url.path.startswith(API + "/"):
                raise ApiError(404, "not found")
            fault = self._fault(rec)
            if fault:
                raise ApiError(fault.status, fault.message)
            self._authenticate(h.headers.get("Authorization", ""))
            with self._lock:
                status, payload, schema = self._route(rec)
            if schema == "text":
                ctype = "text/html"
        except ApiError as e:
            status, payload, schema = e.status, e.body, e.schema
        except Exception as e:  # a bug of this fake: make it visible
            self.errors.append(f"{rec.method} {rec.path}: {type(e).__name__}: {e}")
            status, payload, schema = 500, {"message": f"fake lakeFS error: {e}"}, "Error"
        rec.status = status
        if schema not in ("text", None):
            self._check(schema, payload, f"{rec.method} {rec.path} -> {status}")
        data = b"" if payload is None else payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        h.send_response(status)
        if data:
            h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if data and h.command != "HEAD":
            h.wfile.write(data)

    @staticmethod
    def _read_body(h: BaseHTTPRequestHandler) -> bytes:
        """Content-Length or chunked (the SDK streams uploads from a file object: urllib3 sends
        them chunked, which Go's net/http, lakeFS's server, accepts)."""
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline()  # CRLF after each chunk
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    def _fault(self, rec: Recorded) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.times > 0 and f.method == rec.method and f.path.fullmatch(rec.path):
                    f.times -= 1
                    return f
        return None

    def _authenticate(self, header: str) -> None:
        expected = base64.b64encode(f"{self.access_key}:{self.secret_key}".encode()).decode()
        if header != f"Basic {expected}":
            raise ApiError(401, "error authenticating request")

    def _check(self, schema: str, payload: Any, where: str) -> None:
        if not isinstance(payload, dict):
            self.errors.append(f"{where}: {schema} body is not an object")
            return
        missing = [k for k in REQUIRED.get(schema, ()) if k not in payload]
        if missing:
            self.errors.append(f"{where}: {schema} lacks required {missing}")
        if "pagination" in payload:
            self._check("Pagination", payload["pagination"], where)
        for item in payload.get("results", []) if schema in ITEM_SCHEMA else []:
            self._check(ITEM_SCHEMA[schema], item, where)

    # -- routes ------------------------------------------------------------------------------

    def _route(self, rec: Recorded) -> tuple[int, Any, str | None]:
        m, p, q = rec.method, rec.path, rec.query
        if m == "GET" and p == "/config":
            return 200, {"version_config": {"version": "1.84.0"}, "storage_config": {
                "blockstore_type": "local", "blockstore_namespace_example": "local://path",
                "blockstore_namespace_ValidityRegex": "^local://", "pre_sign_support": False,
                "pre_sign_support_ui": False, "import_support": False, "import_validity_regex": "^local://"}}, None
        parts = p.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "repositories":
            raise ApiError(404, "not found")
        repo = self._repo(parts[1])
        rest = parts[2:]
        if m == "GET" and not rest:
            return 200, {"id": repo.id, "creation_date": repo.creation_date, "default_branch": repo.default_branch,
                         "storage_namespace": repo.storage_namespace, "storage_id": "", "read_only": False}, "Repository"
        if rest[:1] == ["branches"]:
            return self._branches(repo, m, rest[1:], q, rec)
        if rest[:1] == ["refs"] and len(rest) >= 3 and rest[2] == "objects" and rest[3:] == ["stat"] and m == "GET":
            return self._stat(repo, rest[1], self._path(q))
        if rest[:1] == ["refs"] and len(rest) == 4 and rest[2] == "merge" and m == "POST":
            return self._merge(repo, rest[1], rest[3], rec.json or {})
        if rest[:1] == ["refs"] and len(rest) == 3 and rest[2] == "commits" and m == "GET":
            return self._log(repo, rest[1])
        if rest[:1] == ["commits"] and len(rest) == 2 and m == "GET":
            return 200, self._public(repo.commits[self._resolve(repo, rest[1])]), "Commit"
        if rest == ["tags"] and m == "POST":
            return self._create_tag(repo, rec.json or {})
        if rest[:1] == ["tags"] and len(rest) == 2 and m == "GET":
            if rest[1] not in repo.tags:
                raise ApiError(404, "tag not found")
            return 200, {"id": rest[1], "commit_id": repo.tags[rest[1]]}, "Ref"
        raise ApiError(404, f"no route {m} {p} in this fake")

    def _branches(self, repo: Repo, m: str, rest: list[str], q: dict, rec: Recorded):
        if not rest and m == "POST":
            body = rec.json or {}
            name, source = body.get("name"), body.get("source")
            if not name or not source:
                raise ApiError(400, "name and source are required")
            if not BRANCH_RE.match(name):
                raise ApiError(400, "argument name: branch id: invalid value: validation error")
            if name in repo.branches:
                raise ApiError(409, "branch already exists: not unique")
            commit = self._resolve(repo, source, committed=True)
            repo.branches[name] = Branch(commit, hidden=bool(body.get("hidden")))
            return 201, commit, "text"
        if not rest:
            raise ApiError(405, "method not allowed")
        branch = self._branch(repo, rest[0])
        sub = rest[1:]
        if not sub and m == "GET":
            return 200, {"id": rest[0], "commit_id": branch.head}, "Ref"
        if not sub and m == "DELETE":
            if rest[0] == repo.default_branch:
                raise ApiError(403, "cannot delete repository default branch")
            del repo.branches[rest[0]]
            return 204, None, None
        if sub == ["objects"] and m == "POST":
            return self._upload(branch, self._path(q), rec)
        if sub == ["diff"] and m == "GET":
            results = [{"type": self._change(repo, branch, path, e), "path": path, "path_type": "object",
                        **({"size_bytes": e["size_bytes"]} if e else {})}
                       for path, e in sorted(branch.staging.items())]
            return 200, {"pagination": self._page(results), "results": results}, "DiffList"
        if sub == ["commits"] and m == "POST":
            return self._commit(repo, rest[0], branch, rec.json or {})
        raise ApiError(404, f"no route {m} branches/{'/'.join(rest)} in this fake")

    # -- operations --------------------------------------------------------------------------

    def _upload(self, branch: Branch, path: str, rec: Recorded):
        ctype = rec.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            raise ApiError(400, "this fake takes application/octet-stream uploads only")
        address = f"local://lakefs/data/{uuid.uuid4().hex}"
        self.blobs[address] = rec.body
        entry = {"physical_address": address, "checksum": hashlib.md5(rec.body).hexdigest(),
                 "size_bytes": len(rec.body), "mtime": int(time.time()), "content_type": ctype or
                 "application/octet-stream", "metadata": {}}
        branch.staging[path] = entry
        return 201, self._stats(path, entry), "ObjectStats"

    def _stat(self, repo: Repo, ref: str, path: str):
        view = self._view(repo, ref)
        if path not in view:
            raise ApiError(404, "not found")
        return 200, self._stats(path, view[path]), "ObjectStats"

    def _commit(self, repo: Repo, name: str, branch: Branch, body: dict):
        if "message" not in body:
            raise ApiError(400, "message is required")
        if not branch.staging and not body.get("allow_empty"):
            raise ApiError(400, "commit: no changes")
        tree = self._view(repo, name)
        cid = self._new_commit(repo, [branch.head], body["message"], body.get("metadata") or {}, tree)
        branch.head, branch.staging = cid, {}
        return 201, self._public(repo.commits[cid]), "Commit"

    def _merge(self, repo: Repo, source: str, destination: str, body: dict):
        dst = self._branch(repo, destination)
        if dst.staging:
            raise ApiError(400, f"{destination}: uncommitted changes (dirty branch)")
        src_id = self._resolve(repo, source, committed=True)
        base = self._merge_base(repo, src_id, dst.head)
        s, d = repo.commits[src_id]["tree"], repo.commits[dst.head]["tree"]
        b = repo.commits[base]["tree"] if base else {}
        merged: dict[str, dict] = {}
        for path in sorted(set(s) | set(d) | set(b)):
            sv, dv, bv = (x.get(path, {}).get("checksum") for x in (s, d, b))
            if sv == dv or sv == bv:
                pick = d.get(path)
            elif dv == bv:
                pick = s.get(path)
            else:  # the spec's 409 body for merges is a MergeResult (the controller sends an empty reference)
                raise ApiError(409, "conflict found", body={"reference": ""}, schema="MergeResult")
            if pick is not None:
                merged[path] = pick
        if merged == d and not body.get("allow_empty") and not body.get("force"):
            raise ApiError(400, "no changes")
        message = body.get("message") or f"Merge '{source}' into '{destination}'"
        cid = self._new_commit(repo, [dst.head, src_id], message, body.get("metadata") or {}, merged)
        dst.head = cid
        return 200, {"reference": cid}, "MergeResult"

    def _create_tag(self, repo: Repo, body: dict):
        tag, ref = body.get("id"), body.get("ref")
        if not tag or not ref:
            raise ApiError(400, "id and ref are required")
        if not valid_tag(tag):
            raise ApiError(400, "argument id: tag id: invalid value: validation error")
        if tag in repo.tags:
            raise ApiError(409, "tag already exists: not unique")
        repo.tags[tag] = self._resolve(repo, ref, committed=True)
        return 201, {"id": tag, "commit_id": repo.tags[tag]}, "Ref"

    def _log(self, repo: Repo, ref: str):
        out, current = [], self._resolve(repo, ref, committed=True)
        while current:
            c = repo.commits[current]
            out.append(self._public(c))
            current = c["parents"][0] if c["parents"] else None
        return 200, {"pagination": self._page(out), "results": out}, "CommitList"

    # -- helpers -----------------------------------------------------------------------------

    def _repo(self, name: str) -> Repo:
        if not REPO_RE.match(name):
            raise ApiError(400, "argument repository: repository id: invalid value: validation error")
        if name not in self.repos:
            raise ApiError(404, "repository not found")
        return self.repos[name]

    @staticmethod
    def _branch(repo: Repo, name: str) -> Branch:
        if name not in repo.branches:
            raise ApiError(404, "branch not found")
        return repo.branches[name]

    @staticmethod
    def _path(q: dict) -> str:
        if not q.get("path"):
            raise ApiError(400, "path is required")
        return q["path"][0]

    def _resolve(self, repo: Repo, ref: str, committed: bool = True) -> str:
        if ref in repo.branches:
            return repo.branches[ref].head
        if ref in repo.tags:
            return repo.tags[ref]
        if ref in repo.commits:
            return ref
        raise ApiError(404, "not found")

    def _view(self, repo: Repo, ref: str) -> dict[str, dict]:
        tree = dict(repo.commits[self._resolve(repo, ref)]["tree"])
        if ref in repo.branches:
            for path, entry in repo.branches[ref].staging.items():
                if entry is None:
                    tree.pop(path, None)
                else:
                    tree[path] = entry
        return tree

    @staticmethod
    def _change(repo: Repo, branch: Branch, path: str, entry: dict | None) -> str:
        if entry is None:
            return "removed"
        return "changed" if path in repo.commits[branch.head]["tree"] else "added"

    @staticmethod
    def _merge_base(repo: Repo, a: str, b: str) -> str | None:
        ancestors, todo = set(), [a]
        while todo:
            c = todo.pop()
            if c not in ancestors:
                ancestors.add(c)
                todo.extend(repo.commits[c]["parents"])
        queue = [b]
        seen: set[str] = set()
        while queue:
            c = queue.pop(0)
            if c in ancestors:
                return c
            if c not in seen:
                seen.add(c)
                queue.extend(repo.commits[c]["parents"])
        return None

    def _new_commit(self, repo: Repo, parents: list[str], message: str, metadata: dict, tree: dict) -> str:
        n = next(self._ids)
        cid = hashlib.sha256(json.dumps([n, parents, message, metadata, sorted(tree)]).encode()).hexdigest()
        repo.commits[cid] = {"id": cid, "parents": list(parents), "committer": self.user, "message": message,
                             "creation_date": int(time.time()), "meta_range_id": hashlib.sha256(
                                 json.dumps(sorted((p, e["checksum"]) for p, e in tree.items())).encode()).hexdigest(),
                             "metadata": dict(metadata), "generation": n, "tree": dict(tree)}
        return cid

    @staticmethod
    def _public(commit: dict) -> dict:
        return {k: v for k, v in commit.items() if k != "tree"}

    @staticmethod
    def _stats(path: str, entry: dict) -> dict:
        return {"path": path, "path_type": "object", "physical_address": entry["physical_address"],
                "checksum": entry["checksum"], "size_bytes": entry["size_bytes"], "mtime": entry["mtime"],
                "content_type": entry["content_type"], "metadata": entry["metadata"]}

    @staticmethod
    def _page(results: list) -> dict:
        return {"has_more": False, "next_offset": "", "results": len(results), "max_per_page": 1000}
