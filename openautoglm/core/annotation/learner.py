"""Self-training for the labelling loop: the unlabelled pool joins the people's labels where the model is surest.

With few labels, the heads of :class:`~openautoglm.core.nlp.learn.FewLabelClassifier` see a few rows per label; the
pool holds thousands more. One round of self-training (Yarowsky 1995; "pseudo-labelling", Lee 2013): per predicted
label, the surest ``fraction`` of the unlabelled rows (by the margin of the two likeliest labels,
:func:`~openautoglm.core.nlp.learn.confident_rows`) join the labelled rows with their predicted labels, and each
view's class-balanced head is refitted with the views and ``C`` the labels chose. Taking a share of *each* predicted
label keeps a rare label in the pseudo-labels. ``train_round`` (through ``TrainRoundParams.self_training``) and the
simulated annotator call this one function.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.learn import confident_rows, fit_head


def self_trained_heads(
    views: Sequence[sparse.spmatrix],
    labelled: npt.ArrayLike,
    y: npt.ArrayLike,
    probs: npt.ArrayLike,
    chosen: Sequence[int],
    C: float,
    *,
    fraction: float = 0.5,
    warm: dict[int, LogisticRegression] | None = None,
) -> list[tuple[int, LogisticRegression]]:
    """The heads refitted on the labelled rows and the surest ``fraction`` of each predicted label's other rows.

    Args:
        views: Design matrices of every row (labelled and unlabelled), one per view.
        labelled: Indices of the labelled rows.
        y: Their labels, indices into the ``k`` columns of ``probs``.
        probs: ``(rows, k)`` probabilities of the model fitted on the labels alone.
        chosen: The views in the product (indices into ``views``).
        C: The heads' inverse regularisation.
        fraction: Share of each predicted label's unlabelled rows that join (``0``: none, the heads on the labels).
        warm: View -> an earlier head of that view (e.g. the previous round's): the new one starts from its
            coefficients (the same convex objective, so the same optimum up to the solver's tolerance, in fewer
            iterations); updated with the new heads.

    Returns:
        ``(view, head)`` pairs, as :attr:`FewLabelClassifier.parts` holds them.

    Raises:
        ConfigurationError: Lengths that disagree, or a fraction outside [0, 1].
    """
    matrix = np.asarray(probs, dtype=np.float64)
    index = np.asarray(labelled, dtype=np.int64)
    labels = np.asarray(y, dtype=np.int64)
    if len(index) != len(labels) or any(v.shape[0] != len(matrix) for v in views):
        raise ConfigurationError("self-training needs one label per labelled row and every view over every row")
    if not 0.0 <= fraction <= 1.0:
        raise ConfigurationError(f"the self-training fraction must be in [0, 1], not {fraction}")
    k = matrix.shape[1]
    unlabelled = np.setdiff1d(np.arange(len(matrix)), index)
    rows, targets = index, labels
    if fraction > 0 and len(unlabelled):
        confident = unlabelled[confident_rows(matrix[unlabelled], fraction)]
        rows = np.concatenate([index, confident])
        targets = np.concatenate([labels, matrix[confident].argmax(axis=1)])
    heads = []
    for v in chosen:
        head = warm_head(sparse.csr_matrix(views[v])[rows], targets, k, C, None if warm is None else warm.get(v))
        if warm is not None:
            warm[v] = head
        heads.append((v, head))
    return heads


def warm_head(
    x: sparse.spmatrix, y: npt.NDArray[np.int64], k: int, C: float, previous: LogisticRegression | None
) -> LogisticRegression:
    """:func:`openautoglm.core.nlp.learn.fit_head`, started from ``previous``'s coefficients where it has the same
    ``C`` and saw the same labels."""
    if previous is None or previous.C != C or not np.array_equal(previous.classes_, np.unique(y)):
        return fit_head(x, y, k, C)
    counts = np.bincount(y, minlength=k)
    weights = {c: len(y) / (int((counts > 0).sum()) * int(n)) for c, n in enumerate(counts) if n}
    head = LogisticRegression(C=C, max_iter=3000, class_weight=weights, warm_start=True)
    head.coef_, head.intercept_ = previous.coef_.copy(), previous.intercept_.copy()
    return head.fit(x, y)
