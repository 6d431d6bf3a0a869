"""README's API tour stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import actors
import channel

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_channel_example_runs_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    channel_block = next(block for block in blocks if "channel.Codec" in block)
    exec(compile(channel_block, "README.md", "exec"), {})


def test_every_public_name_the_readme_mentions_exists() -> None:
    for module in (actors, channel):
        mentioned = set(re.findall(rf"\b{module.__name__}\.([A-Za-z_]\w*)", README))
        assert mentioned, module.__name__
        missing = {name for name in mentioned if name not in module.__all__}
        assert not missing, f"README mentions {module.__name__}.{missing}, which is not in its __all__"
