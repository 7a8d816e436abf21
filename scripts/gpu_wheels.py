"""``make gpu-wheels``: everything the bare GPU machine lacks, into the git-ignored ``.gpu/``.

The GPU machine (docs/gpu.md) has Python 3.12, a CUDA build of torch and a fixed image of
packages (``PRESENT`` below), no network and no ta, ccxt or pydantic. This script, run here:

1. takes cryptocast's dependencies from pyproject.toml, drops torch (never carried: the machine's
   own CUDA torch must stay) and what the image already holds, and downloads each remaining one as
   a wheel for CPython 3.12 on manylinux x86-64, pinned to the version installed in this venv (the
   one CI tests), then the same for every requirement in those wheels' metadata (markers evaluated
   for Linux / Python 3.12, extras skipped) until the set is closed. A package with no binary
   wheel (ta ships only an sdist) is built here with ``pip wheel`` and must come out pure-Python;
2. builds a wheel of cryptocast itself (installed there with ``--no-deps``);
3. copies the reference candles the check reads (daily BTC/ETH/LTC for ``make compare``, hourly
   BTC) to ``.gpu/data/ohlcv/binance/``;
4. checks the set: every wheel installs for cp312/manylinux (``pip install --dry-run --no-index
   --no-deps --target``), every requirement of a carried wheel is carried or in the image, one
   version per package, and the working tree that travels to the machine plus ``.gpu`` fits the
   device tool's 64 MiB.

Usage: ``python scripts/gpu_wheels.py`` (``make gpu-wheels``). Exit 1 with the reason when a check
fails.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEST = REPO / ".gpu"
LIMIT_MIB = 64.0  # the device tool's cap on the working tree that travels, carried paths included
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (39, 35, 34, 31, 28, 27, 24, 17)] + [
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]
# The GPU image's Python packages (/work/.library/device/KINDS.md, "Python packages already
# there", read 2026-11-17), as normalised names. Anything here is not carried.
_PRESENT_NAMES = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
    hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib
    jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator
    lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
    mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx
    ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc
    nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand
    nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
    nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
    opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
    pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
    psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
    pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
    pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
    scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
    shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
    tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz
    torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers
    treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
    werkzeug wheel wrapt xarray xxhash yarl zipp"""
PRESENT = set(_PRESENT_NAMES.split())
NEVER = {"torch"}  # the machine's CUDA build is the one to use
CANDLES = ["BTC-USDT_1d", "BTC-USDT_1h", "ETH-USDT_1d", "LTC-USDT_1d"]
MARKER_ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def _wheel_name(path: Path) -> str:
    return norm(path.name.split("-")[0])


def _requirements(wheel: Path) -> list[str]:
    """Names a wheel requires on Linux / CPython 3.12 (extras skipped)."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    names = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is not None and not req.marker.evaluate(MARKER_ENV):
            continue  # an extra, or another platform / Python
        names.append(norm(req.name))
    return names


def fetch(name: str, wheels: Path) -> Path:
    """Download (or, for a pure-Python sdist, build) the wheel of ``name`` at this venv's version."""
    try:
        spec = f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        spec = name  # a dependency of a carried wheel not installed here: the newest that fits
    before = set(wheels.glob("*.whl"))
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    got = _pip(
        "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
        "--implementation", "cp", *plat, "-d", str(wheels), spec,
    )  # fmt: skip
    if got.returncode != 0:  # no binary wheel: build one here, which must be pure Python
        got = _pip("wheel", "--no-deps", "-w", str(wheels), spec)
        if got.returncode != 0:
            raise SystemExit(f"error: no wheel for {spec}: {got.stderr.strip().splitlines()[-1]}")
    new = [p for p in set(wheels.glob("*.whl")) - before if _wheel_name(p) == norm(name)]
    found = new or [p for p in wheels.glob("*.whl") if _wheel_name(p) == norm(name)]
    if not found:
        raise SystemExit(f"error: pip reported success for {spec} but left no wheel")
    wheel = found[0]
    if got.args[3] == "wheel" and not wheel.name.endswith("-py3-none-any.whl"):
        raise SystemExit(f"error: {wheel.name} was built here but is not pure Python")
    return wheel


def project_dependencies() -> list[str]:
    import tomllib
    from packaging.requirements import Requirement

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [norm(Requirement(d).name) for d in deps]


def tree_bytes() -> int:
    """Bytes of what the device tool sends: tracked and untracked-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum((REPO / p).stat().st_size for p in out.split("\0") if p and (REPO / p).is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared/data/ohlcv/binance")
    args = p.parse_args(argv)
    wheels = DEST / "wheels"
    shutil.rmtree(DEST, ignore_errors=True)
    wheels.mkdir(parents=True)

    todo = [n for n in project_dependencies() if n not in PRESENT | NEVER]
    carried: dict[str, Path] = {}
    while todo:
        name = todo.pop(0)
        if name in carried:
            continue
        carried[name] = fetch(name, wheels)
        print(f"  {carried[name].name}")
        todo += [r for r in _requirements(carried[name]) if r not in PRESENT | NEVER | {name}]
    leftovers = [REPO / "build", REPO / "cryptocast.egg-info"]
    existed = {p for p in leftovers if p.exists()}
    built = _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO))
    for p in set(leftovers) - existed:  # setuptools builds in the tree; leave it as it was
        shutil.rmtree(p, ignore_errors=True)
    if built.returncode != 0:
        raise SystemExit(f"error: building the cryptocast wheel failed:\n{built.stderr[-2000:]}")
    print(f"  {next(wheels.glob('cryptocast-*.whl')).name}")

    data = DEST / "data" / "ohlcv" / "binance"
    data.mkdir(parents=True)
    for stem in CANDLES:
        src = args.shared / f"{stem}.parquet"
        if not src.is_file():
            raise SystemExit(f"error: reference candles {src} not found (--shared FOLDER)")
        shutil.copy(src, data / src.name)

    problems = check(wheels)
    carried_mib = sum(f.stat().st_size for f in DEST.rglob("*") if f.is_file()) / 2**20
    tree_mib = tree_bytes() / 2**20
    print(
        f"{len(list(wheels.glob('*.whl')))} wheels + candles in {DEST.relative_to(REPO)}: "
        f"{carried_mib:.1f} MiB; working tree {tree_mib:.1f} MiB; together "
        f"{carried_mib + tree_mib:.1f} of {LIMIT_MIB:.0f} MiB"
    )
    if carried_mib + tree_mib > LIMIT_MIB:
        problems.append(f"over the device tool's {LIMIT_MIB:.0f} MiB")
    for prob in problems:
        print(f"error: {prob}")
    return 1 if problems else 0


def check(wheels: Path) -> list[str]:
    """Problems with the wheel set: platform tags, unmet requirements, duplicate versions."""
    problems = []
    files = sorted(wheels.glob("*.whl"))
    names = [_wheel_name(f) for f in files]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        problems.append(f"more than one version of {', '.join(sorted(dupes))}")
    have = set(names) | PRESENT
    for f in files:
        missing = [r for r in _requirements(f) if r not in have and r not in NEVER]
        if missing and _wheel_name(f) != "cryptocast":
            problems.append(f"{f.name} needs {', '.join(missing)}, neither carried nor present")
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    with tempfile.TemporaryDirectory() as tmp:
        dry = _pip(
            "install", "--dry-run", "--no-index", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.12", "--implementation", "cp", *plat, "--target", tmp,
            *map(str, files),
        )  # fmt: skip
    if dry.returncode != 0:
        problems.append(f"pip --dry-run for cp312 refused the set: {dry.stderr.strip()[-500:]}")
    else:
        print(dry.stdout.strip().splitlines()[-1])
    return problems


if __name__ == "__main__":
    sys.exit(main())
