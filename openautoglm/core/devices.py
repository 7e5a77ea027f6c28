"""Where torch work runs."""

from __future__ import annotations

from typing import Any


def torch_device() -> Any:
    """The process's GPU when it has one (a dask-cuda worker sees exactly one, its own), else the CPU."""
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
