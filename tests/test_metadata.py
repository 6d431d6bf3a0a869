"""What a packager reads: the version, the license, the changelog."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import actors
import channel

ROOT = Path(__file__).resolve().parent.parent


def test_both_packages_report_the_installed_version() -> None:
    assert channel.__version__ == actors.__version__ == importlib.metadata.version("trio-comms")


def test_the_license_file_is_the_license_pyproject_names() -> None:
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_the_changelog_names_the_new_public_api() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    for name in ("RejectedFrame", "PeerNotReading", "PeerNotAnswering", "Observable", "supervisor_socket"):
        assert name in changelog
        assert hasattr(channel, name) or hasattr(actors, name)
