"""Two processes loading a Planetoid graph on a fresh home at once (two Dask workers starting a graph search) both
get the graph: the copy and processing under home are made by one process at a time."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration]


def _root() -> Path:
    configured = os.environ.get("OPENAUTOGLM_DATA_ROOT")
    base = Path(configured) if configured else REPO.parent / "shared" / "datasets"
    return base / "graph" / "planetoid"


def _load(root: str, home: str) -> tuple[int, int]:
    from openautoglm.adapters.graphs import PlanetoidGraph, load_graph

    os.environ["OPENAUTOGLM_HOME"] = home  # settings read the environment at each call
    data = load_graph(PlanetoidGraph(name="Cora", root=Path(root)))
    return int(data.num_nodes), int(data.edge_index.shape[1])


def test_concurrent_first_loads_do_not_race(tmp_path: Path) -> None:
    root = _root()
    if not (root / "Cora" / "raw").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the shared Planetoid data is missing under {root}")
        pytest.skip("no shared Planetoid data here")
    # Three fresh homes, three processes loading into each at once (the race showed in 1 of 4 pairs before).
    homes = [tmp_path / f"home{i}" for i in range(3)]
    jobs = [(str(root), str(home)) for home in homes for _ in range(3)]
    with cf.ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        shapes = list(pool.map(_load, *zip(*jobs, strict=True)))
    assert shapes == [(2708, 10556)] * len(jobs)
    assert all((home / "graph-cache" / "planetoid" / "Cora" / "processed").is_dir() for home in homes)
