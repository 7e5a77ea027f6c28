"""The prompt optimisers, one module each, behind :data:`OPTIMIZERS` (``search(start, context)``)."""

from openautoglm.core.prompt.optimizers.base import OPTIMIZERS, Evaluation, Mistake, SearchContext

# Importing the modules registers them.
from openautoglm.core.prompt.optimizers import (  # noqa: F401  isort: skip
    template_search,
    few_shot,
    instruction_search,
    default,
)

__all__ = ["OPTIMIZERS", "Evaluation", "Mistake", "SearchContext"]
