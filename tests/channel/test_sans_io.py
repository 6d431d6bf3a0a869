"""channel/ is sans-IO: importing it (and using it) never imports trio."""

from __future__ import annotations

import subprocess
import sys


def test_channel_never_imports_trio() -> None:
    code = (
        "import sys, channel; "
        "channel.FrameDecoder(channel.ResponseFrame).receive_data(b''); "
        "assert 'trio' not in sys.modules, 'channel imported trio'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
