"""The README's command lines run as written.

Every ``cryptocast ...`` line in README.md's fenced shell blocks runs, in page order, as a
subprocess of the venv's ``cryptocast`` in a temporary folder laid out like the repository
(``configs/`` beside it, the reference candles at ``../shared/data/ohlcv/binance``), offline: a
download line is served by the fake exchange (tests/fake_exchange.py) from the same candles. Each
must exit 0, or the code its comment documents (``# exit 10: ...``). The walkthrough uses the
small configs, so this takes about a minute and a half on 2 cores.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fake_exchange import FakeExchange

README = REPO / "README.md"
SHELL_BLOCKS = ("bash", "sh", "shell", "console")
_EXIT = re.compile(r"#.*?\bexit (\d+)\b")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def readme_commands(text: str) -> list[tuple[dict[str, str], list[str], int, str]]:
    """``(env assignments, argv, expected exit code, line)`` of every ``cryptocast`` line in
    the fenced shell blocks of ``text``, in order."""
    out = []
    block = None
    for line in text.splitlines():
        fence = re.match(r"^\s*```(\S*)", line)
        if fence:
            block = fence.group(1) if block is None else None
            continue
        if block not in SHELL_BLOCKS or not line.strip():
            continue
        words = shlex.split(line, comments=True)
        env = {}
        while words and _ASSIGN.match(words[0]):
            key, value = words.pop(0).split("=", 1)
            env[key] = value
        if words and words[0] == "cryptocast":
            code = _EXIT.search(line)
            out.append((env, words, int(code.group(1)) if code else 0, line.strip()))
    return out


def test_the_parser_reads_assignments_flags_and_documented_exit_codes():
    text = (
        "```bash\nsource .venv/bin/activate\n"
        "X=1 cryptocast forecast -c 'a b.yaml'   # exit 10: too old\n"
        "cryptocast data  # 1 s\n```\n"
        "```\ncryptocast not-shell\n```\n"
        "```cron\n5 0 * * *  cryptocast forecast\n```\n"
    )
    assert readme_commands(text) == [
        ({"X": "1"}, ["cryptocast", "forecast", "-c", "a b.yaml"], 10, text.splitlines()[2]),
        ({}, ["cryptocast", "data"], 0, "cryptocast data  # 1 s"),
    ]


def test_every_readme_table_row_has_as_many_cells_as_its_header():
    """A row with a stray cell, or a stray row of one cell, breaks the table on GitHub."""
    bad, header = [], None
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if not line.startswith("|"):
            header = None
            continue
        cells = len(re.split(r"(?<!\\)\|", line.strip().strip("|")))
        if header is None:
            header = cells
        elif cells != header:
            bad.append(f"line {number}: {cells} cells, header has {header}: {line[:60]}")
    assert not bad, bad


@pytest.mark.timeout(900)
def test_every_cryptocast_line_in_the_readme_runs_as_written(tmp_path, shared_ohlcv):
    commands = readme_commands(README.read_text())
    # the walkthrough a user with local files follows: the import is the first real run
    assert len(commands) >= 8, [c[3] for c in commands]
    assert commands[0][1][:3] == ["cryptocast", "fetch", "--import"], commands[0][3]

    repo = tmp_path / "repo"  # the README's paths are relative to the repository root
    repo.mkdir()
    (repo / "configs").symlink_to(REPO / "configs")
    shared = tmp_path / "shared" / "data" / "ohlcv"
    shared.mkdir(parents=True)
    (shared / "binance").symlink_to(shared_ohlcv)
    exe = Path(sys.executable).with_name("cryptocast")
    prefix = [str(exe)] if exe.is_file() else [sys.executable, "-m", "cryptocast"]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOCAST_")}
    with FakeExchange(shared_ohlcv) as exchange:  # the online lines, offline
        base_env["CRYPTOCAST_EXCHANGE_URL"] = exchange.url
        for env, argv, expected, line in commands:
            done = subprocess.run(
                prefix + argv[1:],
                cwd=repo,
                env={**base_env, **env},
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == expected, (
                f"README line {line!r} exited {done.returncode}, expected {expected}:\n"
                f"{done.stderr[-2000:]}\n{done.stdout[-2000:]}"
            )
