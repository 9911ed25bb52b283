"""`mlcycle model reproduce` for a table model: the original's and the rebuilt model's scores on the rebuilt
data's holdout split, through the scoring the evaluate stage uses (`core.scoring.scores`), compared
bit for bit (`lifecycle.reproduce.compare_predictions`). The task's `reproduce` hook."""

from __future__ import annotations

from pathlib import Path

from mlcycle.core import scoring
from mlcycle.core.paths import Paths
from mlcycle.lifecycle.reproduce import compare_predictions
from mlcycle.tasks.tabular import features, train


def predictions(tree: Path, original_dir: Path) -> dict:
    paths = Paths(tree)
    try:
        spec = features.FeatureSpec.from_json(paths.feature_spec)
        X, _ = features.read(paths, "test", spec)
        a = scoring.scores(train.load(original_dir)[0], X, spec.task)
        b = scoring.scores(train.load(paths.model)[0], X, spec.task)
    except Exception as exc:
        return {"compared": False, "required": True, "why": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return {**compare_predictions(a, b), "split": str(paths.split_file("test").relative_to(tree))}
