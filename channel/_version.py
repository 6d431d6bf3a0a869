"""The installed trio-comms distribution's version, for both packages."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("trio-comms")
    """The installed trio-comms distribution's version."""
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
