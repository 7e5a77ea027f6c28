"""Duplicate rows across chunks: 16-byte digests of the cleaned texts, kept in sorted numpy runs.

A streamed run sees its rows a chunk at a time, but "this text repeats an earlier row's" is a question about the
whole source. :class:`DigestSet` answers it with 24 bytes a distinct row (a 16-byte BLAKE2b digest of the row's
texts and the 8-byte id of the row that first had them), not the texts: about 24 MB for a million distinct rows,
where a Python ``dict`` of the same digests takes about 150 bytes a row. Runs are merged as in a log-structured
merge tree (a new run is merged into the previous one while that one is not larger), so there are at most about
log2(rows / chunk) runs and each digest is re-sorted O(log rows) times.

A 16-byte digest makes a false "duplicate" a 2^-128-per-pair event (about 1e-26 for ten million rows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from openautoglm.core.data.schema import ROW_ID, QuarantinedRow, quarantine_records

DIGEST_BYTES = 16
_MISSING = b"\x00"  # a missing value; a present one is prefixed with \x01 so the two never meet


def row_digests(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One 16-byte digest per row of ``frame`` over the values of ``columns`` (missing values kept apart from
    every text, the empty one included). Rows with equal values in those columns, and only those, share a
    digest."""
    values = [frame[c].tolist() for c in columns]
    out = np.empty(len(frame), dtype=f"S{DIGEST_BYTES}")
    for i, row in enumerate(zip(*values, strict=True)):
        h = hashlib.blake2b(digest_size=DIGEST_BYTES)
        for value in row:
            if value is None or value is pd.NA or (isinstance(value, float) and value != value):
                h.update(_MISSING)
            else:
                encoded = str(value).encode("utf-8", "surrogatepass")
                h.update(b"\x01" + len(encoded).to_bytes(8, "little") + encoded)
        out[i] = h.digest()
    return out


class DigestSet:
    """Digests seen so far, each with the id of the first row that had it.

    Example:
        >>> seen = DigestSet()
        >>> first = seen.first_ids(np.array([b"a", b"b"], dtype="S16"), np.array([7, 8]))
        >>> first.tolist(), seen.first_ids(np.array([b"b"], dtype="S16"), np.array([9])).tolist()
        ([-1, -1], [8])
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self._runs)

    @property
    def nbytes(self) -> int:
        """Bytes held by the digests and their row ids."""
        return sum(keys.nbytes + ids.nbytes for keys, ids in self._runs)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """For each key, the first row id that had it, or -1 where it was never added."""
        found = np.full(len(keys), -1, dtype="int64")
        for run_keys, run_ids in self._runs:
            at = np.searchsorted(run_keys, keys)
            inside = at < len(run_keys)
            hit = np.zeros(len(keys), dtype=bool)
            hit[inside] = run_keys[at[inside]] == keys[inside]
            found[hit] = run_ids[at[hit]]
        return found

    def first_ids(self, keys: np.ndarray, row_ids: np.ndarray) -> np.ndarray:
        """Add the rows (``keys`` in row order, with their ``row_ids``) and return, per row, the id of the earlier
        row with the same key (in this call or an earlier one), or -1 for the first row with its key."""
        if len(keys) == 0:
            return np.empty(0, dtype="int64")
        unique, first_at, inverse = np.unique(keys, return_index=True, return_inverse=True)
        earlier = self.lookup(unique)
        first = np.where(earlier[inverse] >= 0, earlier[inverse], row_ids[first_at[inverse]])
        first = np.where(first == row_ids, -1, first)
        new = earlier < 0
        self._add(unique[new], row_ids[first_at[new]])
        return first.astype("int64")

    def _add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        if len(keys) == 0:
            return
        self._runs.append((keys, ids.astype("int64")))  # np.unique gave them sorted
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= len(self._runs[-1][0]):
            (k2, i2), (k1, i1) = self._runs.pop(), self._runs.pop()
            merged = np.concatenate([k1, k2])
            order = np.argsort(merged, kind="stable")
            self._runs.append((merged[order], np.concatenate([i1, i2])[order]))


def drop_seen_duplicates(
    frame: pd.DataFrame, columns: Sequence[str], seen: DigestSet
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``frame`` (one chunk, in row-id order) whose ``columns`` values no earlier row had, and the
    others as quarantine rows with the reason :func:`~openautoglm.core.data.clean.drop_empty_and_duplicates` gives
    (the same words, the same first row), whether that row is in this chunk or an earlier one (``seen``, which
    the chunk's rows then join)."""
    first = seen.first_ids(row_digests(frame, columns), frame[ROW_ID].to_numpy(dtype="int64"))
    dup = first >= 0
    what = ", ".join(columns)
    rejected = quarantine_records(
        QuarantinedRow(
            row_id=int(rid),
            stage="clean",
            rule="duplicate",
            reason=f"same {what} as row {int(f)}",
            location="",
            record="",
        )
        for rid, f in zip(frame[ROW_ID].to_numpy()[dup].tolist(), first[dup].tolist(), strict=True)
    )
    return frame[~dup].reset_index(drop=True), rejected
