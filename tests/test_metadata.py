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
    for name in ("RejectedFrame", "PeerNotReading", "PeerNotAnswering", "Observable", "supervisor_socket",
                 "CommsOptions", "SupervisorOptions"):
        assert name in changelog
        assert hasattr(channel, name) or hasattr(actors, name)


def test_every_public_name_has_one_import_path() -> None:
    """An error (or anything else) is exported by one package only: channel's errors
    from ``channel``, the trio side's from ``actors``; the wire plumbing only from
    ``channel.lowlevel``."""
    import channel.lowlevel

    assert set(actors.__all__) & set(channel.__all__) == {"__version__"}
    assert not set(channel.lowlevel.__all__) & set(channel.__all__)
    for name in channel.lowlevel.__all__:
        assert not hasattr(actors, name), name
    for package in (channel, actors):
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                assert obj.__module__ == package.__name__, name


def test_the_sans_io_surface_is_small() -> None:
    """What a user of the wire layer needs, and nothing only actors/ uses."""
    assert "request_bytes" not in dir(channel)
    for name in ("frame_head", "pack_value", "FrameFields", "check_request_size", "response_bytes"):
        assert name not in channel.__all__, name
    assert set(channel.__all__) == {
        "__version__",
        # frames and the incremental decoder
        "RequestFrame", "ResponseFrame", "encode_frame", "FrameDecoder", "NEED_DATA", "END_OF_STREAM",
        "OversizedFrame", "RejectedFrame", "DEFAULT_MAX_FRAME_SIZE", "DEFAULT_MAX_DEPTH",
        # messages and error bodies
        "Codec", "MessageCodec", "Request", "TAG_KEY", "error_body", "read_error_body", "GENERIC_ERROR", "FRAME_TOO_LARGE",
        # errors
        "ProtocolError", "LocalProtocolError", "RemoteProtocolError", "TruncatedFrame", "FrameTooLarge",
        "MessageError", "MessageEncodeError", "MessageDecodeError", "ErrorReply",
    }  # fmt: skip
