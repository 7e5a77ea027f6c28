"""Graph sources: Planetoid folders, Geom-GCN's WebKB folders, the user's own node and edge tables (files or
SQL), networkx graphs and KarateClub, all turned into a checked PyG ``Data`` with a train/validation/test split.

A ``Data`` returned here has ``x`` (float), ``y`` (long, -1 where unknown), ``edge_index`` (undirected, no
self-loops) and ``node_ids`` (the source's ids, as text), and for node tasks ``train_mask``/``val_mask``/
``test_mask``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import RandomLinkSplit
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

# Re-exported: the specs live apart (no torch there).
from openautoglm.adapters.graph_specs import GraphSource as GraphSource
from openautoglm.adapters.graph_specs import KarateGraph as KarateGraph
from openautoglm.adapters.graph_specs import PlanetoidGraph as PlanetoidGraph
from openautoglm.adapters.graph_specs import TableGraph as TableGraph
from openautoglm.adapters.graph_specs import WebKBGraph as WebKBGraph
from openautoglm.core.errors import ConfigurationError, DataSourceError
from openautoglm.core.graph.meta import MetaFeatures, meta_features
from openautoglm.settings import get_settings


def _planetoid(spec: PlanetoidGraph) -> Data:
    from torch_geometric.datasets import Planetoid

    settings = get_settings()
    root = spec.raw_root()
    # Planetoid writes processed/ next to raw/; the source may be read-only, so work on a copy under home. One
    # process at a time makes the copy: Dask workers starting together on a fresh home raced here (the second read
    # a processed file the first was still writing: "PytorchStreamReader failed reading file").
    from filelock import FileLock

    cache = settings.home.expanduser() / "graph-cache" / "planetoid"
    raw = cache / spec.name / "raw"
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / f"{spec.name}.lock"), timeout=600):
        if not raw.is_dir():
            shutil.copytree(Path(root) / spec.name / "raw", raw)
        data = Planetoid(str(cache), spec.name)[0]
    data.node_ids = [str(i) for i in range(data.num_nodes)]
    return data


def _karate(spec: KarateGraph) -> Data:
    from torch_geometric.datasets import KarateClub

    data = KarateClub()[0]
    data.node_ids = [str(i) for i in range(data.num_nodes)]
    for mask in ("train_mask", "val_mask", "test_mask"):
        if hasattr(data, mask):
            delattr(data, mask)
    return data


def _webkb(spec: WebKBGraph) -> Data:
    """Geom-GCN's WebKB files: binary bag-of-words features, 5 classes, directed edges made undirected (self-loops
    dropped), masks from ``split_<spec.split>.npz``."""
    folder = spec.folder()
    table = pd.read_csv(folder / "out1_node_feature_label.txt", sep="\t")
    table = table.sort_values("node_id").reset_index(drop=True)
    if not np.array_equal(table["node_id"].to_numpy(), np.arange(len(table))):
        raise DataSourceError(
            f"{spec.describe()}: node ids are not 0..{len(table) - 1}.", hint="use the Geom-GCN files"
        )
    features = np.array([[float(v) for v in row.split(",")] for row in table["feature"]], dtype=np.float32)
    edges = pd.read_csv(folder / "out1_graph_edges.txt", sep="\t").to_numpy(dtype=np.int64).T
    nodes = len(table)
    data = Data(
        x=torch.as_tensor(features),
        y=torch.as_tensor(table["label"].to_numpy(dtype=np.int64, copy=True)),
        edge_index=_undirected(torch.as_tensor(edges), nodes),
    )
    split = folder / f"split_{spec.split}.npz"
    if not split.is_file():
        raise DataSourceError(f"{spec.describe()}: no {split}.", hint="the Geom-GCN splits are split_0..split_9.npz")
    with np.load(split) as masks:
        for name in ("train_mask", "val_mask", "test_mask"):
            setattr(data, name, torch.as_tensor(masks[name].astype(bool)))
    data.node_ids = [str(i) for i in range(nodes)]
    return data


def _read_table(path_or_query: str, spec: TableGraph) -> pd.DataFrame:
    from openautoglm.adapters.sources.load import load_source, spec_from_path, sql_spec

    if spec.url:
        source, password = sql_spec(spec.url, path_or_query, password_env=spec.password_env)
        return load_source(source, password=password, progress=False).frame.drop(columns=["row_id"])
    return load_source(spec_from_path(path_or_query), progress=False).frame.drop(columns=["row_id"])


def _table(spec: TableGraph) -> Data:
    nodes = _read_table(spec.nodes, spec)
    edges = _read_table(spec.edges, spec)
    return from_tables(
        nodes,
        edges,
        id_column=spec.id_column,
        label_column=spec.label_column,
        feature_columns=spec.feature_columns,
        source_column=spec.source_column,
        target_column=spec.target_column,
        name=spec.describe(),
    )


def from_tables(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    id_column: str = "id",
    label_column: str | None = "label",
    feature_columns: tuple[str, ...] | list[str] | None = None,
    source_column: str = "source",
    target_column: str = "target",
    name: str = "graph",
) -> Data:
    """Build a checked ``Data`` from a node table and an edge table (see :class:`TableGraph`)."""
    for frame, columns, what in ((nodes, [id_column], "node"), (edges, [source_column, target_column], "edge")):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ConfigurationError(
                f"{name}: the {what} table has no column(s) {missing}; it has {list(frame.columns)}."
            )
    if nodes.empty:
        raise DataSourceError(f"{name}: the node table is empty.", hint="a graph needs at least one node")
    ids = nodes[id_column].astype(str).str.strip()
    repeated = ids[ids.duplicated()].unique().tolist()
    if repeated:
        raise DataSourceError(f"{name}: node ids {repeated[:5]} appear more than once.", hint="make node ids unique")
    index = {node: i for i, node in enumerate(ids)}
    src, dst = edges[source_column].astype(str).str.strip(), edges[target_column].astype(str).str.strip()
    dangling = sorted((set(src) | set(dst)) - set(index))
    if dangling:
        raise DataSourceError(
            f"{name}: {len(dangling)} edge endpoint(s) are not in the node table, e.g. {dangling[:5]}.",
            hint="add those nodes to the node table or drop their edges",
        )
    if label_column is not None and label_column not in nodes.columns:
        raise ConfigurationError(
            f"{name}: no label column '{label_column}' in {list(nodes.columns)}.",
            hint="set label_column=None for an unlabelled graph (link prediction)",
        )
    chosen = (
        list(feature_columns)
        if feature_columns is not None
        else [c for c in nodes.columns if c not in (id_column, label_column)]
    )
    x = _features(nodes, chosen, ids, name)
    y = torch.full((len(nodes),), -1, dtype=torch.long)
    classes: list[str] = []
    if label_column is not None:
        labels = nodes[label_column]
        known = labels.notna() & (labels.astype(str).str.strip() != "")
        classes = sorted(labels[known].astype(str).unique().tolist())
        lookup = {c: i for i, c in enumerate(classes)}
        y[torch.as_tensor(known.to_numpy(dtype=bool, copy=True))] = torch.as_tensor(
            [lookup[str(v)] for v in labels[known]], dtype=torch.long
        )
    edge_index = torch.as_tensor(np.array([[index[s] for s in src], [index[t] for t in dst]]), dtype=torch.long)
    data = Data(x=x, y=y, edge_index=_undirected(edge_index, len(nodes)))
    data.node_ids = ids.tolist()
    data.classes = classes
    return data


def _features(nodes: pd.DataFrame, columns: list[str], ids: pd.Series, name: str) -> torch.Tensor:
    if not columns:
        return torch.ones((len(nodes), 1))  # featureless graph: a constant feature
    values = nodes[columns].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise DataSourceError(
            f"{name}: feature '{columns[col]}' of node {ids.iloc[row]!r} is {nodes[columns[col]].iloc[row]!r}, not a "
            f"finite number ({int(bad.to_numpy().sum())} such values).",
            hint="fill or drop those values, or leave non-numeric columns out with feature_columns=[...]",
        )
    array = values.to_numpy(dtype=np.float32)
    # Columns of a user's table come in any scale (a degree of 16 next to a share of 0.15): standardise them.
    std = array.std(axis=0)
    array = (array - array.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return torch.as_tensor(array, dtype=torch.float32)


def _undirected(edge_index: torch.Tensor, nodes: int) -> torch.Tensor:
    edge_index, _ = remove_self_loops(edge_index)
    result: torch.Tensor = coalesce(to_undirected(edge_index, num_nodes=nodes), num_nodes=nodes)
    return result


def from_networkx_graph(graph: Any, *, feature_key: str = "x", label_key: str = "y") -> Data:
    """A networkx graph with optional per-node feature vectors and labels (attributes ``x`` and ``y``)."""
    nodes = list(graph.nodes)
    if not nodes:
        raise DataSourceError("the networkx graph has no nodes")
    rows = []
    for node in nodes:
        attrs = graph.nodes[node]
        row: dict[str, Any] = {"id": str(node), "label": attrs.get(label_key)}
        feats = attrs.get(feature_key)
        if feats is not None:
            row.update({f"f{i}": v for i, v in enumerate(np.ravel(feats))})
        rows.append(row)
    table = pd.DataFrame(rows)
    has_labels = table["label"].notna().any()
    edges = pd.DataFrame([(str(a), str(b)) for a, b in graph.edges], columns=["source", "target"])
    return from_tables(
        table,
        edges,
        label_column="label" if has_labels else None,
        feature_columns=[c for c in table.columns if c.startswith("f")],
        name="networkx",
    )


LOADERS = {"planetoid": _planetoid, "karate": _karate, "webkb": _webkb, "table": _table}


def load_graph(spec: PlanetoidGraph | KarateGraph | WebKBGraph | TableGraph) -> Data:
    """Load and check a graph (see the module docstring for what the ``Data`` holds)."""
    data = LOADERS[spec.kind](spec)  # type: ignore[operator]
    check_graph(data, spec.describe())
    return data


def check_graph(data: Data, name: str) -> None:
    """Raise :class:`DataSourceError` for an empty graph, mismatched rows, NaN features or bad edges."""
    n = data.num_nodes or 0
    if n == 0:
        raise DataSourceError(f"{name}: the graph has no nodes.")
    if data.x is None or data.x.size(0) != n:
        raise DataSourceError(f"{name}: {n} nodes but {0 if data.x is None else data.x.size(0)} feature rows.")
    if data.y is not None and data.y.size(0) != n:
        raise DataSourceError(f"{name}: {n} nodes but {data.y.size(0)} labels.", hint="one label (or -1) per node")
    if not torch.isfinite(data.x).all():
        raise DataSourceError(f"{name}: features hold NaN or infinite values.")
    if data.edge_index.numel() and (int(data.edge_index.min()) < 0 or int(data.edge_index.max()) >= n):
        raise DataSourceError(f"{name}: edges point at nodes outside 0..{n - 1}.")


def node_split(data: Data, seed: int = 0, train: float = 0.6, val: float = 0.2) -> Data:
    """Keep given masks; otherwise a seeded split of the labelled nodes, stratified by class."""
    if all(getattr(data, m, None) is not None for m in ("train_mask", "val_mask", "test_mask")):
        return data
    from sklearn.model_selection import train_test_split

    labelled = torch.nonzero(data.y >= 0).view(-1).numpy()
    if labelled.size < 3:
        raise ConfigurationError("node classification needs labelled nodes (at least 3)")
    labels = data.y[labelled].numpy()
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 3 else None
    rest_share = 1.0 - train
    train_idx, rest = train_test_split(labelled, test_size=rest_share, random_state=seed, stratify=stratify)
    rest_labels = data.y[rest].numpy()
    rest_counts = np.bincount(rest_labels)
    strat2 = rest_labels if stratify is not None and rest_counts[rest_counts > 0].min() >= 2 else None
    val_idx, test_idx = train_test_split(rest, test_size=1.0 - val / rest_share, random_state=seed, stratify=strat2)
    out = data.clone()
    for name, idx in (("train_mask", train_idx), ("val_mask", val_idx), ("test_mask", test_idx)):
        mask = torch.zeros(data.num_nodes, dtype=torch.bool)
        mask[torch.as_tensor(idx)] = True
        setattr(out, name, mask)
    return out


def graph_meta(data: Data, split: Data | None = None) -> MetaFeatures:
    """The graph's meta-features; with ``split`` (a node task's split of ``data``) the label fields read the
    training nodes' labels only, so validation and test labels never reach the prior (no leak)."""
    train = split.train_mask.numpy() if split is not None and getattr(split, "train_mask", None) is not None else None
    return meta_features(
        data.edge_index.numpy(),
        int(data.num_nodes),
        data.y.numpy() if data.y is not None else None,
        data.x.numpy(),
        train_mask=train,
    )


def link_split(data: Data, seed: int = 0, val: float = 0.05, test: float = 0.1) -> tuple[Data, Data, Data]:
    """Seeded ``RandomLinkSplit`` (undirected, one negative per positive in validation and test)."""
    torch.manual_seed(seed)
    splitter = RandomLinkSplit(num_val=val, num_test=test, is_undirected=True, add_negative_train_samples=False)
    train, validation, testing = splitter(data)
    return train, validation, testing
