"""One strict ISO date parser for every date option and config key (``cryptocast.config.dates``)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cryptocast.config.dates import ISO_FORMAT, parse_iso
from cryptocast.config.schema import load_config
from cryptocast.errors import ConfigError
from tests.conftest import REPO, TINY_CONFIG

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-01-02", datetime(2023, 1, 2, tzinfo=UTC)),
        ("2023-01-02 03:04", datetime(2023, 1, 2, 3, 4, tzinfo=UTC)),
        ("2023-01-02T03:04:05", datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2023-01-02T03:04Z", datetime(2023, 1, 2, 3, 4, tzinfo=UTC)),
        ("2023-01-02T03:04+02:00", datetime(2023, 1, 2, 1, 4, tzinfo=UTC)),
    ],
)
def test_iso_dates_are_read_as_utc(text, expected):
    assert parse_iso(text, "--since") == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("01/02/2023", "is not an ISO date"),  # 1 Feb or 2 Jan? refused, never guessed
        ("2023/01/02", "is not an ISO date"),
        ("2 Jan 2023", "is not an ISO date"),
        ("2023-1-2", "is not an ISO date"),
        ("20230102", "is not an ISO date"),
        ("", "is not an ISO date"),
        ("2023-13-01", "is not a valid date (month must be in 1..12)"),
        ("2023-02-30", "is not a valid date (day is out of range for month)"),
        ("2023-01-02 25:00", "is not a valid date"),
    ],
)
def test_anything_else_is_one_line_naming_the_option_and_the_format(text, why):
    with pytest.raises(ConfigError) as err:
        parse_iso(text, "--test-start")
    msg = str(err.value)
    assert msg.startswith(f"--test-start {text!r} {why}") and msg.endswith(f"use {ISO_FORMAT}")
    assert "\n" not in msg


DATE_KEYS = [
    "data.start",
    "data.end",
    "split.val_start",
    "split.test_start",
    "backtest.test_start",
    "backtest.test_end",
]


@pytest.mark.parametrize("key", DATE_KEYS)
def test_every_date_config_key_is_checked_where_it_was_set(key, tmp_path: Path):
    section, name = key.split(".")
    path = tmp_path / "c.yaml"
    path.write_text(f"{section}:\n  {name}: 01/02/2023\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: {key} '01/02/2023' is not an ISO date; use {ISO_FORMAT}")
    # the same key from --set blames --set, not the (valid) file
    with pytest.raises(ConfigError) as err:
        load_config(TINY_CONFIG, [f"{key}=2023-13-01"])
    msg = str(err.value)
    assert msg.startswith(f"--set {key}=2023-13-01: '2023-13-01' is not a valid date"), msg
    assert str(TINY_CONFIG) not in msg
    # and a good date stays the string written, so config hashes do not move
    assert getattr(getattr(load_config(TINY_CONFIG, [f"{key}=2023-01-02"]), section), name) == (
        "2023-01-02"
    )


def test_bad_names_and_dates_are_rejected_before_data_torch_or_any_output(tmp_path: Path):
    """The CLI's pre-flight checks: one error line, exit 2, and torch never imported."""
    code = f"""
import json, sys
from typer.testing import CliRunner
from cryptocast.cli import app
out = []
for args in (
    ["backtest", "--models", "lstm,nope", "--data-dir", {str(tmp_path)!r}],
    ["backtest", "--test-start", "01/02/2023", "--data-dir", {str(tmp_path)!r}],
    ["train", "-c", {str(TINY_CONFIG)!r}, "--set", "model.name=nope", "--data-dir", {str(tmp_path)!r}],
    ["train", "-c", {str(TINY_CONFIG)!r}, "--set", "data.start=2023-02-30"],
):
    r = CliRunner().invoke(app, args, env={{"COLUMNS": "200"}})
    out.append([r.exit_code, r.output])
print(json.dumps({{"runs": out, "torch": "torch" in sys.modules}}))
"""
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert not got["torch"], "a pre-flight check imported torch"
    for exit_code, output in got["runs"]:
        lines = [ln for ln in output.splitlines() if ln.strip()]
        assert exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), output
    assert "unknown model 'nope'" in got["runs"][0][1]
    assert "--test-start '01/02/2023' is not an ISO date" in got["runs"][1][1]
    assert "--set model.name=nope: unknown model 'nope'" in got["runs"][2][1]
    assert "--set data.start=2023-02-30: '2023-02-30' is not a valid date" in got["runs"][3][1]
