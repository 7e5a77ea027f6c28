"""Graph source specs: what names a graph (a Planetoid folder, the karate club, the user's node and edge tables).

Pydantic only, no torch: the stage catalogue and the CLI read these without importing PyG; reading a graph is
:mod:`openautoglm.adapters.graphs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _GraphSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def describe(self) -> str:
        raise NotImplementedError


class PlanetoidGraph(_GraphSpec):
    """A Planetoid citation graph (Cora, CiteSeer, PubMed) read from ``root/<name>/raw`` without downloading."""

    kind: Literal["planetoid"] = "planetoid"
    name: Literal["Cora", "CiteSeer", "PubMed"] = "Cora"
    root: Path | None = Field(default=None, description="Folder holding <name>/raw (default: data root).")

    def describe(self) -> str:
        return f"planetoid:{self.name}"

    def raw_root(self) -> Path:
        """The folder holding ``<name>/raw`` (``root``, else the data root's graph/planetoid); a clear error when
        it is not there (nothing is downloaded)."""
        from openautoglm.core.errors import DataSourceError
        from openautoglm.settings import get_settings

        data_root = get_settings().data_root
        root = self.root or (data_root / "graph" / "planetoid" if data_root else None)
        if root is None:
            raise DataSourceError(
                f"Planetoid '{self.name}': no folder given to read it from.",
                hint="pass --root (root= in Python) or set OPENAUTOGLM_DATA_ROOT to the folder that holds "
                f"{self.name}/raw with the ind.{self.name.lower()}.* files; nothing is downloaded",
            )
        if not (Path(root) / self.name / "raw").is_dir():
            raise DataSourceError(
                f"Planetoid '{self.name}' not found: no {Path(root) / self.name / 'raw'} folder.",
                hint=f"point --root (root=) at the folder that holds {self.name}/raw with the "
                f"ind.{self.name.lower()}.* files; nothing is downloaded",
            )
        return Path(root)


class KarateGraph(_GraphSpec):
    """Zachary's karate club (34 nodes, 4 communities as labels), built into PyG."""

    kind: Literal["karate"] = "karate"

    def describe(self) -> str:
        return "karate"


class WebKBGraph(_GraphSpec):
    """A WebKB web-page graph (Cornell, Texas, Wisconsin) as released with Geom-GCN, read from
    ``root/<name>/`` without downloading: ``out1_node_feature_label.txt``, ``out1_graph_edges.txt`` and the ten
    fixed splits ``split_<i>.npz`` (train/validation/test masks, 48/32/20 %).

    The released edges are directed and hold self-loops; they are made undirected without self-loops, as PyG's
    heterophily benchmarks (``ToUndirected``) and the H2GCN/GPR-GNN papers do.
    """

    kind: Literal["webkb"] = "webkb"
    name: Literal["cornell", "texas", "wisconsin"] = "cornell"
    split: int = Field(default=0, ge=0, le=9, description="Which of the ten Geom-GCN splits sets the masks.")
    root: Path | None = Field(default=None, description="Folder holding <name>/ (default: data root's graph/webkb).")

    def describe(self) -> str:
        return f"webkb:{self.name}:{self.split}"

    def folder(self) -> Path:
        """``root/<name>`` (``root``, else the data root's graph/webkb); a clear error when it is not there."""
        from openautoglm.core.errors import DataSourceError
        from openautoglm.settings import get_settings

        data_root = get_settings().data_root
        root = self.root or (data_root / "graph" / "webkb" if data_root else None)
        if root is None:
            raise DataSourceError(
                f"WebKB '{self.name}': no folder given to read it from.",
                hint="pass root= (--root) or set OPENAUTOGLM_DATA_ROOT to the folder that holds graph/webkb/"
                f"{self.name}; nothing is downloaded",
            )
        folder = Path(root) / self.name
        if not (folder / "out1_graph_edges.txt").is_file():
            raise DataSourceError(
                f"WebKB '{self.name}' not found: no {folder / 'out1_graph_edges.txt'}.",
                hint=f"point root= at the folder holding {self.name}/ with the Geom-GCN files; nothing is downloaded",
            )
        return folder


class TableGraph(_GraphSpec):
    """The user's graph: a node table (id, optional label, numeric features) and an edge table (source, target).

    Tables are files (CSV, TSV, JSONL, Parquet) or, with ``url``, SQL tables/queries. Ids may be of any type.
    Feature columns default to every column except id and label; they are standardised (mean 0, std 1).
    """

    kind: Literal["table"] = "table"
    nodes: str = Field(description="Node file path, or table/query when url is set.")
    edges: str = Field(description="Edge file path, or table/query when url is set.")
    url: str | None = Field(default=None, description="Database URL (no password) for SQL tables.")
    password_env: str | None = None
    id_column: str = "id"
    label_column: str | None = "label"
    feature_columns: tuple[str, ...] | None = None
    source_column: str = "source"
    target_column: str = "target"

    def describe(self) -> str:
        return f"{'sql' if self.url else 'files'}:{Path(self.nodes).name}+{Path(self.edges).name}"


GraphSource = Annotated[PlanetoidGraph | KarateGraph | WebKBGraph | TableGraph, Field(discriminator="kind")]


#: The graphs known by name: the SDK's ``AutoGraph().fit("cora")`` and the CLI's ``--dataset cora`` read this one table.
NAMED_GRAPHS: dict[str, PlanetoidGraph | KarateGraph | WebKBGraph] = {
    "cora": PlanetoidGraph(name="Cora"),
    "citeseer": PlanetoidGraph(name="CiteSeer"),
    "pubmed": PlanetoidGraph(name="PubMed"),
    "karate": KarateGraph(),
    "cornell": WebKBGraph(name="cornell"),
    "texas": WebKBGraph(name="texas"),
    "wisconsin": WebKBGraph(name="wisconsin"),
}


def named_graph(name: str, root: Path | None = None) -> PlanetoidGraph | KarateGraph | WebKBGraph:
    """The graph called ``name`` (any case), read from ``root`` when given (Planetoid and WebKB graphs).

    Raises:
        ConfigurationError: No graph has that name (the hint lists the names).
    """
    from openautoglm.core.errors import ConfigurationError

    graph = NAMED_GRAPHS.get(name.lower())
    if graph is None:
        raise ConfigurationError(
            f"Unknown graph '{name}'.", hint=f"use one of {', '.join(NAMED_GRAPHS)}, or your own node and edge tables"
        )
    if root is not None and not isinstance(graph, KarateGraph):
        return graph.model_copy(update={"root": root})
    return graph
