"""Tasks of the ``distill`` flow: the teacher labels (cached by inputs), the student learns, the registry keeps it.

The teaching task's result is persisted and cached by its inputs and source (rows, task, teacher, budget, seed,
package version), so a rerun of the same distillation asks the teacher nothing; the teacher's calls go through the
call cache as well. The key is resolved inside the task from a block name or the environment, never an input.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.distill import learn_student, model_teacher, register, teach, teacher_call_cost
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.run import default_cache
from openautoglm.blocks.credentials import api_key_for
from openautoglm.core.nlp.distill import TeacherLabels
from openautoglm.core.nlp.types import Row, TaskConfig


def teach_rows(
    rows: tuple[Row, ...],
    config: TaskConfig,
    spec: ModelSpec,
    credentials_block: str | None,
    cache_mode: CacheMode,
    budget: int | None,
    seed: int,
    batch_size: int,
    version: str,
) -> TeacherLabels[BatchStats]:
    """The teacher's labels for ``rows`` within ``budget`` calls. ``version`` (the package's, and the teacher's
    :func:`~openautoglm.adapters.models.run.model_identity`) keys the cache."""
    api_key = api_key_for(spec, credentials_block)
    teacher = model_teacher(spec, config, api_key=api_key, cache=default_cache(cache_mode))
    return teach(
        rows,
        teacher,
        budget=budget,
        seed=seed,
        batch_size=batch_size,
        calls_per_row=teacher_call_cost(spec, api_key),
    )


teach_task = task(
    name="teach",
    retries=1,
    retry_delay_seconds=[10],
    cache_policy=TASK_SOURCE + INPUTS,
    persist_result=True,
    tags=["model"],
)(teach_rows)

# Not cached: fitting takes seconds, and its inputs (thousands of texts) and output (an estimator) are not worth
# hashing and storing.
train_student_task = task(name="train-student", cache_policy=NO_CACHE)(learn_student)

# No retries: a retry after a registration that went through would add a second version.
register_student_task = task(name="register-student", cache_policy=NO_CACHE)(register)
