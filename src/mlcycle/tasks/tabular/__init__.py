"""The tabular task (data.task `classification` or `regression`): one table, one row per case, a
target column; a scikit-learn pipeline served by `POST /predict`. Its stage notebooks are under
notebooks/tabular/ and call, beside what every task shares in `mlcycle.stages` (validate, the
table profile `eda`, the metrics files):

- `features`: the label, the enrichment hook, the feature spec, the split
- `train`, `search`: the pipeline and its baseline, model families and the hyperparameter search
- `segments`, `routing`: one model per segment, routed as one scikit-learn estimator
- `compiled`: the compiled scoring path (Treelite), proven equal at registration
- `evaluate`, `explain`, `fairness`: holdout metrics with intervals, explanations, groups and gaps
- `monitor`: feature and score drift, performance now against at training
- `reproduce`: a rebuilt version's holdout scores against the original's
- `live`: a fed-back label as stored, the live metric a release compares versions on
"""

from mlcycle.core.tasks import GateKind, Task

TASK = Task(
    name="tabular",
    objectives=("classification", "regression"),
    summary="classification or regression on one table (gradient boosting, a linear model, routed segments)",
    targets={"classification": "classes", "regression": "numbers"},
    default=True,  # models registered before tasks were packages are tables' models; `mlcycle init` writes it
    monitor_module="mlcycle.tasks.tabular.monitor",
    # `gate.minimums: auto`: a floor a model with real signal passes and a constant prediction fails;
    # ROC AUC 0.5 (binary; one-vs-rest for multiclass) and R² 0 are what the prior or the mean scores
    gate_kinds=(
        GateKind("binary classification", tells=("roc_auc",), primary="roc_auc", minimums={"roc_auc": 0.6}),
        GateKind("regression", tells=("rmse", "r2"), primary="rmse", minimums={"r2": 0.1}),
        GateKind("multiclass classification", tells=("log_loss", "balanced_accuracy"), primary="log_loss",
                 minimums={"roc_auc_ovr": 0.6}),
    ),
    probabilities=("classification",),
    hooks={"index": "mlcycle.tasks.tabular.evaluate:index_section",
           "compiled": "mlcycle.tasks.tabular.compiled:load",
           "reproduce": "mlcycle.tasks.tabular.reproduce:predictions",
           "feedback_label": "mlcycle.tasks.tabular.live:check_label",
           "live_metric": "mlcycle.tasks.tabular.live:metric_name",
           "live_scores": "mlcycle.tasks.tabular.live:encode",
           "infer_objective": "mlcycle.tasks.tabular.features:infer_objective"},
)
