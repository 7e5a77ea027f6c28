"""What every benchmark shares: the data root, the machine and versions, medians, and the JSON result file."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def data_root() -> Path:
    """OPENAUTOGLM_DATA_ROOT, else ../shared/datasets next to the checkout; exits with a message if absent."""
    from openautoglm.settings import get_settings

    configured = get_settings().data_root
    root = configured or (REPO.parent / "shared" / "datasets")
    if not root.is_dir():
        sys.exit(f"benchmark data not found at {root}; set OPENAUTOGLM_DATA_ROOT to the datasets folder")
    return root


def machine() -> dict[str, Any]:
    """CPU, cores, memory, OS and Python, for the result file."""
    mem_gb = None
    try:
        with open("/proc/meminfo") as handle:
            mem_gb = round(int(handle.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the named distributions."""
    found = {}
    for name in ("open-autoglm", *packages):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def median_of(runs: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    """Run ``fn`` (which returns seconds) ``runs`` times; the median and every value."""
    values = [fn() for _ in range(runs)]
    return statistics.median(values), values


def write_result(name: str, payload: dict[str, Any], packages: Iterable[str] = ()) -> Path:
    """Write ``bench/results/<name>.json`` with the machine, versions and time stamp added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = {
        "benchmark": name,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(*packages),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
