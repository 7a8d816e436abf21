"""The CLI as a whole: every command has help text and is documented in the README; the error edge."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()


def _commands() -> list[str]:
    from typer.main import get_command

    return sorted(get_command(app).commands)


def test_all_six_commands_are_registered():
    assert _commands() == ["backtest", "data", "features", "fetch", "forecast", "train"]


@pytest.mark.parametrize("name", _commands())
def test_every_command_has_help_text_and_a_readme_section(name):
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    from typer.main import get_command

    assert (get_command(app).commands[name].help or "").strip(), f"{name} has no help text"
    assert f"`cryptocast {name}`" in README, f"README does not document cryptocast {name}"


def test_readme_make_targets_exist():
    targets = set(re.findall(r"^([a-z][\w-]*):", MAKEFILE, flags=re.M))
    for target in set(re.findall(r"`make ([a-z][\w-]*)`", README)):
        assert target in targets, f"README mentions make {target}, which the Makefile lacks"


def test_ci_runs_what_the_readme_says():
    ci = (REPO / ".ci" / "run").read_text()
    for step in ("make install", "make lint", "make test"):
        assert step in ci


def test_help_starts_without_heavy_imports():
    code = (
        "import sys; from cryptocast.cli import app; "
        "heavy = [m for m in ('torch', 'ccxt', 'ta', 'matplotlib', 'scipy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the CLI imports {out.stdout.strip()}"


def test_library_errors_become_one_red_line_and_an_exit_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  foo: 1\n")
    result = CliRunner().invoke(app, ["train", "--config", str(bad), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "model.foo" in lines[0] and "unknown key" in lines[0]
    assert "Traceback" not in result.output
