"""Error types shared across packages."""


class ReactIDError(Exception):
    """Base class for errors the platform raises on purpose."""


class ParamsError(ReactIDError):
    """A setting in params.yaml is missing or invalid; raised before any work starts."""


class StorageError(ReactIDError):
    """An object could not be read or written."""


class StageInputError(ReactIDError):
    """A stage was asked to run without the upstream output it needs."""


class VersioningError(ReactIDError):
    """The data-versioning server (lakeFS) refused or could not be reached; the message says
    which setting, credential, branch or tag to look at."""
