"""The lakefs section of params.yaml: off by default, lakeFS's naming rules checked up front,
and no place for credentials."""

import copy

import pytest

from core.errors import ParamsError
from orchestration.params import parse_params
from versioning.params import LakeFSParams


def _with_lakefs(base_params_raw, **values):
    raw = copy.deepcopy(base_params_raw)
    raw["lakefs"] = {**raw["lakefs"], **values}
    return raw


def test_repo_params_keep_lakefs_off_with_the_documented_defaults(base_params_raw):
    params = parse_params(base_params_raw)
    assert params.lakefs == LakeFSParams()  # params.yaml spells out the defaults, nothing else
    assert not params.lakefs.enabled and params.lakefs.run_branch == "train-demo"


def test_a_params_file_without_the_section_is_off(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    del raw["lakefs"]
    assert not parse_params(raw).lakefs.enabled


@pytest.mark.parametrize("key", ["access_key_id", "secret_access_key", "password"])
def test_credentials_cannot_be_settings(base_params_raw, key):
    with pytest.raises(ParamsError, match=f"lakefs.{key}"):
        parse_params(_with_lakefs(base_params_raw, **{key: "x"}))


@pytest.mark.parametrize(("values", "said"), [
    ({"branch_prefix": "train/"}, "no '/'"),  # lakeFS branch ids: ^\w[-\w]*$
    ({"run_name": "exp 1"}, "branch ids"),
    ({"main_branch": "-main"}, "main_branch"),
    ({"repository": "Reactid"}, "repository ids"),
    ({"endpoint": "localhost:8000"}, "http(s)://"),
    ({"data_prefix": "/abs/"}, "relative folder"),
    ({"tag_prefix": "model/"}, "tag"),
    ({"timeout_s": 0}, "lakefs.timeout_s"),
])
def test_names_lakefs_would_refuse_stop_before_any_work(base_params_raw, values, said):
    with pytest.raises(ParamsError, match=said.replace("(", r"\(").replace(")", r"\)")):
        parse_params(_with_lakefs(base_params_raw, **values))
