"""The check's results: the bench-schema document of benchmark ``gpu``, written atomically."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def machine(acc: str) -> dict[str, Any]:
    """The bench's machine record, with the accelerator's name and the CUDA/cuDNN versions."""
    import torch

    from bench.common import machine_info

    info = machine_info()
    info["device"] = acc
    info["gpu"] = torch.cuda.get_device_name(0) if acc == "cuda" else None
    info["cuda_version"] = torch.version.cuda
    info["cudnn_version"] = torch.backends.cudnn.version() if acc == "cuda" else None
    return info


def document(records: list[dict], quick: bool, acc: str) -> dict[str, Any]:
    """The bench-schema document of benchmark ``gpu`` (``records`` is shared, not copied)."""
    from bench.common import git_commit

    return {
        "benchmark": "gpu",
        "quick": quick,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "machine": machine(acc),
        "records": records,
    }


def write(out: Path, doc: dict[str, Any]) -> Path:
    """Write ``gpu.json`` (``gpu.quick.json`` for the dry run) into ``out`` atomically."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("gpu.quick.json" if doc["quick"] else "gpu.json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)
    return path
