"""scripts/gpu_wheels.py: which requirements of a wheel count on the GPU machine (Linux, 3.12)."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_wheels.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_wheels", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _wheel(folder: Path, name: str, requires: list[str]) -> Path:
    path = folder / f"{name}-1.0-py3-none-any.whl"
    meta = "Metadata-Version: 2.1\nName: {}\nVersion: 1.0\n{}".format(
        name, "".join(f"Requires-Dist: {r}\n" for r in requires)
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA", meta)
    return path


def test_requirements_follow_markers_for_linux_cpython_312(tmp_path):
    gw = _module()
    wheel = _wheel(
        tmp_path,
        "demo",
        [
            "Pydantic_Core==2.50.5",
            "uvloop>=0.16; sys_platform != 'win32'",
            "colorama; sys_platform == 'win32'",
            "tomli; python_version < '3.11'",
            "pytest; extra == 'test'",
            "typing-extensions>=4.6; python_version >= '3.12'",
        ],
    )
    assert gw._requirements(wheel) == ["pydantic-core", "uvloop", "typing-extensions"]


def test_check_names_a_requirement_neither_carried_nor_present(tmp_path):
    gw = _module()
    _wheel(tmp_path, "carried", ["numpy", "not-on-the-image"])
    problems = gw.check(tmp_path)
    assert any("needs not-on-the-image" in p for p in problems), problems
    assert not any("numpy" in p for p in problems)  # numpy is in the image
    assert "torch" in gw.NEVER and "torch" in gw.PRESENT
