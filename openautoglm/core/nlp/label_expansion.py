"""Label-description expansion for zero-shot classification with sentence encoders.

A bare label name (``正面``) is a poor thing to compare a review with: an encoder places it near other words
about words, not near texts that are positive. Two expansions, both chosen by the encoder, never by hand per
data set:

1. **Patterns** (:data:`LABEL_PATTERNS`): the label inside a few generic frames ("{label}的评价", ...); the
   label's vector is the mean of the framed label's embeddings (prompt ensembling, as in Radford et al. 2021).
2. **Descriptor groups** (:data:`DESCRIPTOR_GROUPS`): fixed, domain-free sets of short evaluative phrases (a
   positive, a negative and a neutral/objective register, as in a sentiment lexicon; cf. the knowledgeable
   verbaliser of Hu et al. 2022, which expands label words from an external knowledge base). A label takes a
   group only when the encoder is unambiguous about the whole label set: every label's nearest group (cosine of
   the label's vector to the group's centroid) must be a group no other label is nearest to
   (:func:`assign_groups`). Topic labels (``手机``, ``水果``...) or yes/no labels share nearest groups, so they
   keep their patterns alone; sentiment labels in any wording (``正面/负面``, ``好评/差评``, ``积极/消极``)
   get the matching register.

All functions are pure: they take embeddings, not encoders.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Generic frames around a label name; ``{label}`` is replaced.
LABEL_PATTERNS: tuple[str, ...] = ("{label}", "{label}的评价", "这是一条{label}的反馈", "感觉{label}")

#: Domain-free registers of evaluative language (Chinese), written from general sentiment vocabulary and not tuned
#: on any measured data: which group describes which label is what the encoder chooses.
DESCRIPTOR_GROUPS: dict[str, tuple[str, ...]] = {
    "positive": (
        "满意",
        "非常满意",
        "很满意，推荐",
        "推荐",
        "值得推荐",
        "好评",
        "很好",
        "非常好",
        "太棒了",
        "不错",
        "挺好的",
        "喜欢",
        "很喜欢",
        "惊喜",
        "开心",
        "放心",
        "物超所值",
        "质量好",
        "服务好",
        "很专业",
        "很及时",
        "很方便",
        "下次还会再来",
        "感谢",
    ),
    "negative": (
        "不满意",
        "很不满意",
        "失望",
        "很失望",
        "差评",
        "很差",
        "太差了",
        "糟糕",
        "垃圾",
        "不推荐",
        "再也不买了",
        "后悔",
        "生气",
        "愤怒",
        "坑人",
        "上当",
        "质量差",
        "服务差",
        "态度差",
        "太慢了",
        "很麻烦",
        "投诉",
        "不值",
        "浪费钱",
        "难用",
        "坏了",
    ),
    "neutral": (
        "一般",
        "还行",
        "普通",
        "中规中矩",
        "没什么感觉",
        "说不上好坏",
        "无所谓",
        "客观陈述",
        "只是说明情况",
        "询问",
        "陈述事实",
        "没有评价",
        "描述",
        "信息",
        "不好不坏",
    ),
}


def framed(label: str, patterns: tuple[str, ...] = LABEL_PATTERNS) -> list[str]:
    """The label inside every pattern."""
    return [p.replace("{label}", label) for p in patterns]


def unit_rows(matrix: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Rows scaled to unit length (zero rows left as they are)."""
    m = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


def assign_groups(label_vectors: npt.ArrayLike, group_vectors: npt.ArrayLike) -> list[int] | None:
    """Each label's descriptor group, or ``None`` when the encoder is ambiguous about the label set.

    Args:
        label_vectors: ``(n_labels, d)`` one vector per label (e.g. the mean of its framed embeddings).
        group_vectors: ``(n_groups, d)`` one centroid per descriptor group.

    Returns:
        For every label the index of its nearest group (by cosine) when those nearest groups are all different,
        else ``None`` (more labels than groups, or two labels nearest to one group).
    """
    labels = unit_rows(label_vectors)
    groups = unit_rows(group_vectors)
    if labels.shape[0] > groups.shape[0]:
        return None
    nearest = [int(i) for i in (labels @ groups.T).argmax(axis=1)]
    return nearest if len(set(nearest)) == len(nearest) else None


def prototypes(
    name_vectors: npt.ArrayLike,
    group_vectors: npt.ArrayLike | None = None,
    assignment: list[int] | None = None,
    example_centroids: list[npt.NDArray[np.float64] | None] | None = None,
) -> npt.NDArray[np.float64]:
    """One unit vector per label: its descriptor group's centroid when it has one, else its name vector; plus,
    with equal weight, the centroid of its few-shot examples when there are any.

    Args:
        name_vectors: ``(n_labels, d)`` the labels' pattern-averaged vectors (or explicit verbalisers').
        group_vectors: ``(n_groups, d)`` descriptor-group centroids in the same space.
        assignment: From :func:`assign_groups` (computed in any encoder's space).
        example_centroids: Per label, the mean embedding of its examples, or ``None``.

    Returns:
        ``(n_labels, d)`` unit rows.
    """
    base = unit_rows(name_vectors)
    if group_vectors is not None and assignment is not None:
        base = unit_rows(np.asarray(group_vectors, dtype=np.float64)[assignment])
    if example_centroids:
        rows = []
        for vector, centroid in zip(base, example_centroids, strict=True):
            rows.append(vector if centroid is None else vector + unit_rows(centroid))
        base = unit_rows(np.stack(rows))
    return base
