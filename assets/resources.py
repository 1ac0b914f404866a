"""Resources: the project's settings and its object store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from core.params import Params
from core.storage import ObjectStore, open_params_store
from orchestration.params import ProjectParams, load_params


class ReactIDResource(dg.ConfigurableResource):
    """Where the project lives and which params file drives it.

    Relative paths in params.yaml (storage root, pool roots) resolve against
    `project_dir`, exactly as they do for the CLI and `dvc repro` run from the root.

    S3 credentials (params `storage.backend: s3`) are bound with `dg.EnvVar` by
    `reactid_resource()`: the UI and the run config show the variable's name, never its
    value. Left unset, the store reads the same variables from the run's environment.
    """

    project_dir: str = "."
    params_file: str = "params.yaml"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_session_token: str | None = None

    def load_params(self) -> ProjectParams:
        return load_params(Path(self.project_dir) / self.params_file)

    def store(self, params: Params) -> ObjectStore:
        credentials = None
        if self.s3_access_key and self.s3_secret_key:
            credentials = (self.s3_access_key, self.s3_secret_key, self.s3_session_token)
        return open_params_store(params, credentials=credentials)


def reactid_resource(**config: Any) -> ReactIDResource:
    """The resource with the S3 credentials bound to the environment variables that are set
    (REACTID_S3_* or AWS_*, see core.storage_s3.CREDENTIAL_ENV) through `dg.EnvVar`.

    Only variables present when the definitions load are bound (Dagster fails a run on an
    unset EnvVar), so a local-backend project needs none of them.
    """
    from core.storage_s3 import credential_env_names

    names = credential_env_names()
    if names is not None:
        access, secret, token = names
        config.setdefault("s3_access_key", dg.EnvVar(access))
        config.setdefault("s3_secret_key", dg.EnvVar(secret))
        if token:
            config.setdefault("s3_session_token", dg.EnvVar(token))
    return ReactIDResource(**config)
