"""Normalised sparse adjacency matrices shared by the propagation families (GPR-GNN, H2GCN), cached per graph.

Full-batch training calls a model on the same ``edge_index`` every epoch: the matrices are built once per graph
(keyed by the tensor's storage, shape and node count) and kept by the module that asked.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


def simple_adjacency(edge_index: Tensor, nodes: int) -> sp.csr_matrix:
    """The undirected 0/1 adjacency of ``edge_index`` without self-loops or duplicates (scipy, CPU)."""
    src, dst = edge_index.detach().cpu().numpy()
    keep = src != dst
    src, dst = src[keep], dst[keep]
    data = np.ones(2 * len(src), dtype=np.float32)
    matrix = sp.coo_matrix((data, (np.concatenate([src, dst]), np.concatenate([dst, src]))), shape=(nodes, nodes))
    matrix = matrix.tocsr()
    matrix.data[:] = 1.0
    return matrix


def sym_normalise(matrix: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 M D^-1/2`` with ``D`` the row sums of ``M`` (rows that sum to 0 stay 0)."""
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    inv = np.zeros_like(degree, dtype=np.float64)
    inv[degree > 0] = degree[degree > 0] ** -0.5
    scale = sp.diags(inv)
    result: sp.csr_matrix = (scale @ matrix @ scale).tocsr()
    return result


def to_torch(matrix: sp.spmatrix, device: torch.device) -> Tensor:
    """A scipy matrix as a coalesced float32 torch sparse COO tensor on ``device``."""
    coo = matrix.tocoo()
    indices = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    values = torch.as_tensor(coo.data, dtype=torch.float32)
    return torch.sparse_coo_tensor(indices, values, coo.shape, device=device, check_invariants=False).coalesce()


def graph_key(edge_index: Tensor, nodes: int) -> tuple[int, int, int, str]:
    """What identifies a graph between calls: the edge tensor's storage and shape, the node count, the device."""
    return (edge_index.data_ptr(), int(edge_index.size(1)), nodes, str(edge_index.device))
