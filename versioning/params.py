"""The params section versioning owns: lakeFS (off by default), with lakeFS's own naming rules."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from core.errors import ParamsError
from core.params import Params, Positive, Section


# lakeFS's own rules (pkg/validator/validate.go, pkg/graveler/validate.go): a real server
# answers 400 to names that break them, so they are refused here, before any work starts.
LAKEFS_REPOSITORY_RE = r"[a-z0-9][a-z0-9-]{2,62}"
LAKEFS_BRANCH_RE = r"\w[-\w]*"


def check_lakefs_tag(tag: str) -> str:
    """A lakeFS tag id: git's ref rules as lakeFS applies them (no '/', '..', '@{', '^:?*[\\',
    spaces or control characters; not '@'; not ending in '.' or '.lock')."""
    import re

    if (not tag or tag == "@" or tag.endswith((".", ".lock")) or any(s in tag for s in ("..", "/", "@{"))
            or re.search(r"[\^:?*\[\\\s\x00-\x1f\x7f]", tag)):
        raise ParamsError(f"lakeFS tag {tag!r}: not a valid tag id (no '/', '..', '@{{', '^:?*[\\' or spaces)")
    return tag


class LakeFSParams(Section):
    """Data versioning with lakeFS (off by default: the embedded demo needs no server).

    Credentials are never settings: they come from LAKEFS_ACCESS_KEY_ID and
    LAKEFS_SECRET_ACCESS_KEY (unknown keys are refused, so they cannot be put here either).
    """

    enabled: bool = False
    endpoint: str = "http://localhost:8000"   # the lakeFS server; /api/v1 is appended when no path is given
    repository: str = "reactid-data"
    main_branch: str = "main"
    branch_prefix: str = "train-"             # a training run's branch: <branch_prefix><run_name>
    run_name: str = "demo"                    # the training run the quality gates commit to
    data_prefix: str = "reactid/"             # object paths in the repository: <data_prefix><store key>
    tag_prefix: str = "model-"                # promotion tags: <tag_prefix><run_name>-<evaluation fingerprint>
    pre_sign: bool = False                    # upload through lakeFS (False) or to pre-signed URLs
    timeout_s: Positive = 30.0                # per request (connect and read)
    retries: Annotated[int, Field(ge=0, le=10)] = 2  # failed connections (and GETs) retried; a sent POST never is

    @model_validator(mode="after")
    def _lakefs_names(self) -> LakeFSParams:
        import re

        if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", self.endpoint):
            raise ValueError(f"endpoint {self.endpoint!r}: expected http(s)://host[:port][/api/v1]")
        if not re.fullmatch(LAKEFS_REPOSITORY_RE, self.repository):
            raise ValueError(f"repository {self.repository!r}: lakeFS repository ids match {LAKEFS_REPOSITORY_RE}")
        for name, value in (("main_branch", self.main_branch), ("branch_prefix + run_name", self.run_branch)):
            if not re.fullmatch(LAKEFS_BRANCH_RE, value):
                raise ValueError(f"{name} {value!r}: lakeFS branch ids match {LAKEFS_BRANCH_RE} "
                                 "(letters, digits, '_' and '-'; no '/')")
        if self.data_prefix.startswith("/") or (self.data_prefix and not self.data_prefix.endswith("/")):
            raise ValueError(f"data_prefix {self.data_prefix!r}: expected a relative folder ending in '/' (or '')")
        try:
            check_lakefs_tag(f"{self.tag_prefix}{self.run_name}-0")
        except ParamsError as e:
            raise ValueError(f"tag_prefix/run_name: {e}") from None
        return self

    @property
    def run_branch(self) -> str:
        return f"{self.branch_prefix}{self.run_name}"


class VersioningSections(Params):
    """Everything versioning reads of its own: the lakefs section, with core's."""

    lakefs: LakeFSParams = LakeFSParams()  # data versioning; off unless params.yaml turns it on
