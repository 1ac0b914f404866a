"""Errors of the pretrained backends."""

from core.errors import ReactIDError


class BackendLoadError(ReactIDError):
    """A model directory or hub id does not hold the model a backend expects."""


class ModelOutputError(ReactIDError, ValueError):
    """A model answered with text that cannot be parsed; the message quotes the raw answer."""
