"""The CLI as a whole: every command has help text and is documented (README + docs/); the error edge."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import REPO, modules_loaded_by

README = (REPO / "README.md").read_text()
DOCS = {p.relative_to(REPO).as_posix(): p.read_text() for p in sorted((REPO / "docs").glob("*.md"))}
PAGES = {"README.md": README, **DOCS}
MAKEFILE = (REPO / "Makefile").read_text()


def _commands() -> list[str]:
    from typer.main import get_command

    return sorted(get_command(app).commands)


def test_all_seven_commands_are_registered():
    assert _commands() == ["backtest", "data", "features", "fetch", "forecast", "train", "tune"]


@pytest.mark.parametrize("name", _commands())
def test_every_command_has_help_text_and_a_readme_or_docs_section(name):
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    from typer.main import get_command

    assert (get_command(app).commands[name].help or "").strip(), f"{name} has no help text"
    # listed in the README's command table, and a heading of its own in the README or docs/
    assert f"| `cryptocast {name}` |" in README, f"README's command table lacks cryptocast {name}"
    heading = re.compile(rf"^#+ .*`cryptocast {name}`", flags=re.M)
    pages = [page for page, text in PAGES.items() if heading.search(text)]
    assert pages, f"no README or docs/*.md heading documents `cryptocast {name}`"


def test_readme_and_docs_make_targets_exist():
    targets = set(re.findall(r"^([a-z][\w-]*):", MAKEFILE, flags=re.M))
    for page, text in PAGES.items():
        for target in set(re.findall(r"`make ([a-z][\w-]*)`", text)):
            assert target in targets, f"{page} mentions make {target}, which the Makefile lacks"


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_and_docs_links_resolve():
    """Every relative link in README.md and docs/*.md names an existing file and heading."""
    for page, text in PAGES.items():
        here = (REPO / page).parent
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (here / path).resolve() if path else REPO / page
            assert file.exists(), f"{page}: link to missing {target}"
            if anchor and file.suffix == ".md":
                headings = re.findall(
                    r"^#+ (.+)$", re.sub(r"```.*?```", "", file.read_text(), flags=re.S), flags=re.M
                )
                assert anchor in {_slug(h) for h in headings}, (
                    f"{page}: no heading #{anchor} in {path or page}"
                )


def test_ci_runs_what_the_readme_says():
    ci = (REPO / ".ci" / "run").read_text()
    for step in ("make install", "make lint", "make test"):
        assert step in ci


def test_help_starts_without_heavy_imports():
    heavy = ("torch", "ccxt", "ta", "matplotlib", "scipy")
    assert modules_loaded_by("from cryptocast.cli import app", heavy) == []


def test_library_errors_become_one_red_line_and_an_exit_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  foo: 1\n")
    result = CliRunner().invoke(app, ["train", "--config", str(bad), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "model.foo" in lines[0] and "unknown key" in lines[0]
    assert "Traceback" not in result.output


def test_version_and_short_help():
    from cryptocast import __version__

    for flag in ("--version", "-V"):
        result = CliRunner().invoke(app, [flag])
        assert result.exit_code == 0 and result.output.strip() == f"cryptocast {__version__}"
    for args in (["-h"], ["train", "-h"], ["fetch", "-h"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output, args


def test_commands_are_listed_in_pipeline_order():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    pipeline = ["fetch", "data", "features", "train", "backtest", "forecast"]
    listed = [
        ln.split()[1]
        for ln in result.output.splitlines()
        if ln.startswith("│ ") and len(ln.split()) > 1
    ]
    listed = [n for n in listed if n in _commands()]
    assert listed[: len(pipeline)] == pipeline, listed
    assert sorted(listed) == _commands()  # later commands (e.g. tune) follow the pipeline


@pytest.mark.parametrize("name", _commands())
def test_help_shows_no_type_noise_and_reads_whole_at_80_columns(name):
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "<list[" not in result.output, result.output
    # rich markup eating "[default: ...]" left "ccxt exchange id ." behind
    assert not re.search(r"\w \.(?=\s)", result.output), result.output
