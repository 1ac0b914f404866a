"""Resources: the project's settings and its object store."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from core.params import Params, load_params
from core.storage import ObjectStore, open_store


class ReactIDResource(dg.ConfigurableResource):
    """Where the project lives and which params file drives it.

    Relative paths in params.yaml (storage root, pool roots) resolve against
    `project_dir`, exactly as they do for the CLI and `dvc repro` run from the root.
    """

    project_dir: str = "."
    params_file: str = "params.yaml"

    def load_params(self) -> Params:
        return load_params(Path(self.project_dir) / self.params_file)

    def store(self, params: Params) -> ObjectStore:
        return open_store(params.storage.backend, str(params.resolve(params.storage.root)))
