"""Tasks of the ``annotation_round`` and ``train_round`` flows: the use case's steps
(:mod:`openautoglm.usecases.annotation`) as Prefect tasks, so each step is a node of the run graph.

None is cached: every step reads or writes the annotation store or the model registry, whose state is the point.
Reads and predictions may retry; queueing and registering do not (a retry after a write that went through would
add a second round record or a second model version).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from openautoglm.usecases import annotation as usecase

current_model_task = task(name="current-model", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])(
    usecase.current_model
)
round_pool_task = task(name="round-pool", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])(
    usecase.round_pool
)
prelabel_task = task(name="pre-label", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=[10], tags=["model"])(
    usecase.prelabel
)
choose_rows_task = task(name="choose-rows", cache_policy=NO_CACHE)(usecase.choose_rows)
queue_rows_task = task(name="queue-rows", cache_policy=NO_CACHE)(usecase.queue_rows)

train_if_due_task = task(name="train-if-due", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])(
    usecase.train_if_due
)
training_data_task = task(name="training-data", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])(
    usecase.training_data
)
fit_student_task = task(name="fit-student", cache_policy=NO_CACHE, tags=["model"])(usecase.fit_student)
register_student_task = task(name="register-student", cache_policy=NO_CACHE)(usecase.register_student)

#: The use cases' steps as tasks: what the flows hand to the use cases.
ROUND_TASKS = usecase.RoundSteps(
    current_model=current_model_task,
    round_pool=round_pool_task,
    prelabel=prelabel_task,
    choose_rows=choose_rows_task,
    queue_rows=queue_rows_task,
)
TRAIN_TASKS = usecase.TrainSteps(
    due=train_if_due_task,
    training_data=training_data_task,
    fit_student=fit_student_task,
    register_student=register_student_task,
)
