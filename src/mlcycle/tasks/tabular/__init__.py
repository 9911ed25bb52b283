"""The tabular task (data.task `classification` or `regression`): one table, one row per case, a
target column; a scikit-learn pipeline served by `POST /predict`. Its stage notebooks are under
notebooks/tabular/; the code they call is in `mlcycle.stages` (validate, eda, features, train,
search, segments, evaluate, explain, fairness) and the generic monitor in `mlcycle.monitoring`.
"""

from mlcycle.core.tasks import Task

TASK = Task(
    name="tabular",
    objectives=("classification", "regression"),
    summary="classification or regression on one table (gradient boosting, a linear model, routed segments)",
)
