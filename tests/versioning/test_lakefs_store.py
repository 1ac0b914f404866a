"""LakeFSVersioning through the real lakefs SDK against a lakeFS REST API on 127.0.0.1.

The server (fake_lakefs.py) answers with the status codes and bodies of lakeFS's OpenAPI
spec; what crosses the wire is asserted on the requests it recorded. No real lakeFS server
is involved (none can be installed here).
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from core.errors import VersioningError
from versioning.lakefs_store import (
    ACCESS_KEY_ENV,
    SECRET_KEY_ENV,
    LakeFSAuthError,
    LakeFSConflictError,
    LakeFSNotFoundError,
    LakeFSUnreachableError,
    LakeFSVersioning,
    md5_hex,
)

REPOSITORY = "reactid-data"  # the fake_lakefs fixture's repository
REPO = "/repositories/" + REPOSITORY
FILES = {"tables/captions/s-000.parquet": b"PAR1 captions", "metrics/quality_gates/s-000.json": b'{"passed": true}'}
META = {"run_id": "run-abc", "params_hash": "p0123456789abcdef012",
        "checks": {"captions": {"passed": True, "failed_expectations": 0, "rows": 2}}}


@pytest.fixture
def vc(lakefs_settings, lakefs_env):
    return LakeFSVersioning(lakefs_settings())


def _no_credentials_on_the_wire(server) -> None:
    """The secret never appears in any path, query or body; the key id only in the
    Authorization header (HTTP basic auth, the SDK's scheme)."""
    ACCESS_KEY, SECRET_KEY = server.access_key, server.secret_key
    for r in server.requests:
        blob = (r.path + json.dumps(r.query)).encode() + r.body
        assert SECRET_KEY.encode() not in blob and ACCESS_KEY.encode() not in blob, (r.method, r.path)
        assert all(SECRET_KEY not in v for k, v in r.headers.items() if k.lower() != "authorization")
        assert r.headers.get("Authorization", "").startswith("Basic ")


def test_run_branch_is_created_once_from_main(vc, fake_lakefs):
    first = vc.ensure_run_branch("exp-1")
    again = vc.ensure_run_branch("exp-1")
    assert first.name == again.name == "train-exp-1"
    assert first.created and not again.created and first.commit_id == again.commit_id
    creates = fake_lakefs.calls("POST", f"{REPO}/branches")
    assert len(creates) == 1 and creates[0].json == {"name": "train-exp-1", "source": "main", "force": False,
                                                      "hidden": False}
    assert first.commit_id == fake_lakefs.repos[REPOSITORY].branches["main"].head


def test_validated_shard_is_committed_with_metadata_and_no_credentials(vc, fake_lakefs):
    branch = vc.ensure_run_branch().name
    commit = vc.commit_validated_shard(branch, "s-000", FILES, META)
    assert commit.created and commit.branch == "train-demo" and commit.shard == "s-000"
    assert sorted(commit.uploaded) == sorted(f"reactid/{k}" for k in FILES)

    # the shard's commit (on its short-lived branch) carries the metadata as sent on the wire
    (sent,) = fake_lakefs.calls("POST", rf"{REPO}/branches/train-demo-tx-[0-9a-f]+/commits")
    meta = sent.json["metadata"]
    assert meta["reactid.run_id"] == "run-abc" and meta["reactid.params_hash"] == "p0123456789abcdef012"
    assert json.loads(meta["reactid.checks"]) == META["checks"]
    assert meta["reactid.kind"] == "validated_shard" and meta["reactid.shard"] == "s-000"
    assert all(isinstance(v, str) for v in meta.values())  # lakeFS metadata is string -> string
    # merged into the run branch, whose head carries the same metadata plus the shard commit
    (merge,) = fake_lakefs.calls("POST", rf"{REPO}/refs/train-demo-tx-[0-9a-f]+/merge/train-demo")
    assert merge.json["metadata"]["reactid.shard_commit"] == commit.shard_commit_id
    head = fake_lakefs.repos[REPOSITORY].commits[fake_lakefs.repos[REPOSITORY].branches["train-demo"].head]
    assert head["id"] == commit.commit_id and head["parents"][1] == commit.shard_commit_id
    assert fake_lakefs.tree(REPOSITORY, "train-demo") == {f"reactid/{k}": v for k, v in FILES.items()}
    # the short-lived branch is gone, main is untouched
    assert set(fake_lakefs.repos[REPOSITORY].branches) == {"main", "train-demo"}
    assert fake_lakefs.tree(REPOSITORY, "main") == {}
    # uploads are the raw bytes (application/octet-stream body, not multipart)
    uploads = fake_lakefs.calls("POST", rf"{REPO}/branches/train-demo-tx-[0-9a-f]+/objects")
    assert {u.query["path"][0]: u.body for u in uploads} == {f"reactid/{k}": v for k, v in FILES.items()}
    _no_credentials_on_the_wire(fake_lakefs)


def test_unchanged_shard_is_not_committed_again(vc, fake_lakefs):
    branch = vc.ensure_run_branch().name
    first = vc.commit_validated_shard(branch, "s-000", FILES, META)
    n_requests = len(fake_lakefs.requests)
    again = vc.commit_validated_shard(branch, "s-000", FILES, {**META, "run_id": "run-def"})
    assert not again.created and again.shard_commit_id is None and again.commit_id == first.commit_id
    new = fake_lakefs.requests[n_requests:]
    assert {r.method for r in new} == {"GET"}  # only stats and the branch head: no upload, commit or merge


def test_only_changed_files_are_uploaded(vc, fake_lakefs):
    branch = vc.ensure_run_branch().name
    vc.commit_validated_shard(branch, "s-000", FILES, META)
    changed = {**FILES, "tables/captions/s-000.parquet": b"PAR1 captions v2"}
    n_requests = len(fake_lakefs.requests)
    commit = vc.commit_validated_shard(branch, "s-000", changed, META)
    assert commit.created and commit.uploaded == ("reactid/tables/captions/s-000.parquet",)
    uploads = [r for r in fake_lakefs.requests[n_requests:] if r.path.endswith("/objects") and r.method == "POST"]
    assert len(uploads) == 1 and md5_hex(uploads[0].body) == md5_hex(b"PAR1 captions v2")


def test_files_may_be_local_paths(vc, fake_lakefs, tmp_path):
    path = tmp_path / "faces.parquet"
    path.write_bytes(b"faces table")
    branch = vc.ensure_run_branch().name
    vc.commit_validated_shard(branch, "s-001", {"tables/faces/s-001.parquet": path}, META)
    assert fake_lakefs.tree(REPOSITORY, "train-demo") == {"reactid/tables/faces/s-001.parquet": b"faces table"}


def test_promote_merges_into_main_and_tags_once(vc, fake_lakefs):
    branch = vc.ensure_run_branch().name
    shard = vc.commit_validated_shard(branch, "s-000", FILES, META)
    main_before = fake_lakefs.repos[REPOSITORY].branches["main"].head
    promotion = vc.promote(branch, "model-demo-0123456789ab", {"run_id": "eval-1", "models": ["phase_4"]})
    assert promotion.created and promotion.data_commit == shard.commit_id and promotion.into == "main"
    repo = fake_lakefs.repos[REPOSITORY]
    assert repo.tags["model-demo-0123456789ab"] == promotion.commit_id == repo.branches["main"].head
    assert repo.commits[promotion.commit_id]["parents"] == [main_before, shard.commit_id]
    (merge,) = fake_lakefs.calls("POST", rf"{REPO}/refs/{shard.commit_id}/merge/main")  # the commit, not the name
    assert merge.json["metadata"]["reactid.data_commit"] == shard.commit_id
    assert json.loads(merge.json["metadata"]["reactid.models"]) == ["phase_4"]
    assert fake_lakefs.tree(REPOSITORY, "main") == {f"reactid/{k}": v for k, v in FILES.items()}

    again = vc.promote(branch, "model-demo-0123456789ab", {"run_id": "eval-2"})
    assert not again.created and again.commit_id == promotion.commit_id
    assert len(fake_lakefs.calls("POST", rf"{REPO}/refs/.*/merge/main")) == 1
    assert len(fake_lakefs.calls("POST", f"{REPO}/tags")) == 1
    _no_credentials_on_the_wire(fake_lakefs)


def test_lineage_walks_from_the_tag_back_to_each_shard_commit(vc, fake_lakefs):
    branch = vc.ensure_run_branch().name
    base = fake_lakefs.repos[REPOSITORY].branches["main"].head
    s0 = vc.commit_validated_shard(branch, "s-000", FILES, META)
    s1 = vc.commit_validated_shard(branch, "s-001", {"tables/faces/s-001.parquet": b"faces"},
                                   {**META, "run_id": "run-xyz"})
    s0_again = vc.commit_validated_shard(branch, "s-000", {**FILES, "metrics/quality_gates/s-000.json": b"{}"},
                                         {**META, "run_id": "run-regated"})
    promotion = vc.promote(branch, "model-demo-feedbeef0000", {"models": ["phase_4", "ablation-base"]})

    lineage = vc.lineage("model-demo-feedbeef0000")
    assert lineage.promotion_commit == promotion.commit_id and lineage.data_commit == s0_again.commit_id
    assert lineage.run_branch == "train-demo" and lineage.data_commit_is_parent
    assert [(s.shard, s.commit_id) for s in lineage.shards] == [("s-000", s0_again.commit_id),
                                                                 ("s-001", s1.commit_id)]  # newest per shard
    assert lineage.shards[0].metadata["reactid.run_id"] == "run-regated"
    assert lineage.shards[1].shard_commit_id == s1.shard_commit_id
    assert lineage.shards[1].metadata["reactid.params_hash"] == META["params_hash"]
    assert lineage.base_commit == base  # where the run branch left main
    assert s0.commit_id != s0_again.commit_id
    assert json.loads(lineage.metadata["reactid.models"]) == ["phase_4", "ablation-base"]
    json.dumps(lineage.to_dict())  # serialisable for the CLI


def test_lineage_of_a_foreign_tag_is_refused(vc, fake_lakefs):
    repo = fake_lakefs.repos[REPOSITORY]
    repo.tags["hand-made"] = repo.branches["main"].head
    with pytest.raises(VersioningError, match="hand-made.*not a promotion"):
        vc.lineage("hand-made")


def test_tag_pointing_elsewhere_is_a_conflict_naming_the_tag(vc, fake_lakefs):
    branch = vc.ensure_run_branch().name
    vc.commit_validated_shard(branch, "s-000", FILES, META)
    repo = fake_lakefs.repos[REPOSITORY]
    repo.tags["model-demo-taken"] = repo.branches["main"].head
    with pytest.raises(LakeFSConflictError, match="tag 'model-demo-taken' already exists"):
        vc.promote(branch, "model-demo-taken")
    assert not fake_lakefs.calls("POST", rf"{REPO}/refs/.*/merge/main")  # refused before merging


def test_merge_conflict_names_the_branch(lakefs_settings, lakefs_env, fake_lakefs):
    other = LakeFSVersioning(lakefs_settings(run_name="other"))
    vc = LakeFSVersioning(lakefs_settings())
    b_other, b_demo = other.ensure_run_branch().name, vc.ensure_run_branch().name
    other.commit_validated_shard(b_other, "s-000", FILES, META)
    vc.commit_validated_shard(b_demo, "s-000", {**FILES, "tables/captions/s-000.parquet": b"different"}, META)
    other.promote(b_other, "model-other-1")
    with pytest.raises(LakeFSConflictError, match=r"merge branch 'train-demo' into 'main'.*branch 'train-demo'.*409"):
        vc.promote(b_demo, "model-demo-1")


def test_rejected_credentials_name_the_env_vars(lakefs_settings, fake_lakefs, monkeypatch):
    ACCESS_KEY = fake_lakefs.access_key
    monkeypatch.setenv(ACCESS_KEY_ENV, ACCESS_KEY)
    monkeypatch.setenv(SECRET_KEY_ENV, "wrong-secret-value")
    vc = LakeFSVersioning(lakefs_settings())
    with pytest.raises(LakeFSAuthError) as err:
        vc.ensure_run_branch()
    message = str(err.value)
    assert ACCESS_KEY_ENV in message and SECRET_KEY_ENV in message and "401" in message
    assert fake_lakefs.endpoint in message and "wrong-secret-value" not in message and ACCESS_KEY not in message
    assert fake_lakefs.requests[-1].status == 401


def test_missing_credentials_fail_before_any_request(lakefs_settings, fake_lakefs, monkeypatch):
    monkeypatch.delenv(ACCESS_KEY_ENV, raising=False)
    monkeypatch.setenv(SECRET_KEY_ENV, fake_lakefs.secret_key)
    with pytest.raises(LakeFSAuthError, match=f"{ACCESS_KEY_ENV} is not set"):
        LakeFSVersioning(lakefs_settings())
    assert fake_lakefs.requests == []


def test_branch_created_meanwhile_409_is_handled(vc, fake_lakefs):
    vc.ensure_run_branch()
    # the next read says "missing", so the create meets the real branch: 409, then it is there
    fake_lakefs.fail("GET", f"{REPO}/branches/train-demo", 404, "branch not found")
    again = vc.ensure_run_branch()
    assert not again.created
    assert [r.status for r in fake_lakefs.calls("POST", f"{REPO}/branches")] == [201, 409]


def test_branch_create_409_without_a_branch_is_a_conflict_naming_it(vc, fake_lakefs):
    fake_lakefs.fail("POST", f"{REPO}/branches", 409, "branch already exists: not unique")
    with pytest.raises(LakeFSConflictError,
                       match=r"create branch 'train-demo' from 'main'.*409.*branch 'train-demo' cannot be read"):
        vc.ensure_run_branch()


def test_missing_repository_says_how_to_create_it(lakefs_settings, lakefs_env, fake_lakefs):
    vc = LakeFSVersioning(lakefs_settings(repository="no-such-repo"))
    with pytest.raises(LakeFSNotFoundError, match="lakectl repo create lakefs://no-such-repo"):
        vc.ensure_run_branch()


def test_missing_main_branch_is_named(lakefs_settings, lakefs_env, fake_lakefs):
    vc = LakeFSVersioning(lakefs_settings(main_branch="trunk"))
    with pytest.raises(LakeFSNotFoundError, match=r"source branch 'trunk' \(lakefs.main_branch\)"):
        vc.ensure_run_branch()


def test_refused_connection_names_the_endpoint(lakefs_settings, lakefs_env):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    vc = LakeFSVersioning(lakefs_settings(endpoint=endpoint, retries=1))
    with pytest.raises(LakeFSUnreachableError, match=rf"cannot reach lakeFS at {endpoint} \(lakefs.endpoint\)"):
        vc.ensure_run_branch()


def test_a_server_that_never_answers_times_out(lakefs_settings, lakefs_env):
    """lakefs-sdk waits forever by default; lakefs.timeout_s bounds every request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        vc = LakeFSVersioning(lakefs_settings(endpoint=endpoint, timeout_s=0.2))
        with pytest.raises(LakeFSUnreachableError, match=rf"cannot reach lakeFS at {endpoint}.*(timed out|Timeout)"):
            vc.ensure_run_branch()
    finally:
        for conn, _ in accepted:
            conn.close()
        listener.close()


def test_metadata_holding_a_credential_is_refused(vc, fake_lakefs):
    branch = vc.ensure_run_branch().name
    with pytest.raises(VersioningError, match="contains a lakeFS credential"):
        vc.commit_validated_shard(branch, "s-000", FILES, {**META, "note": f"key={fake_lakefs.secret_key}"})
    assert not fake_lakefs.calls("POST", rf"{REPO}/branches/.*/commits")


def test_repr_and_errors_never_show_the_secret(vc, fake_lakefs):
    SECRET_KEY = fake_lakefs.secret_key
    assert SECRET_KEY not in repr(vc) and fake_lakefs.access_key not in repr(vc)
    fake_lakefs.fail("GET", f"{REPO}/branches/train-demo", 500, "boom")
    with pytest.raises(VersioningError) as err:
        vc.head("train-demo")
    assert "500" in str(err.value) and "boom" in str(err.value) and SECRET_KEY not in str(err.value)
