"""Task `recommendation`: the fitted recommenders as one MLflow pyfunc model.

Input, one row per request: `user` (id as text), `k` (list length, optional: recommend.k) and
`exclude` (optional: item ids a caller does not want, e.g. the ones already seen, separated by
commas). Output, k rows per request: user, rank (1 = best), item, score and source: the model that
made the list, `hybrid` (or the single component the version uses) for a known user, `content` for a
user never seen whose excluded items are known (they stand for the user's history), `popularity` for
a user never seen otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mlcycle.core import provenance
from mlcycle.core.scoring import quiet_mlflow
from mlcycle.core.workspace import model_metadata
from mlcycle.tasks.recommender import ranking
from mlcycle.tasks.recommender.recommenders import Recommenders

with quiet_mlflow():  # mlflow's import-time progress-bar warning stays out of the notebooks' reports
    import mlflow.pyfunc

OUTPUT_COLUMNS = ["user", "rank", "item", "score", "source"]


def parse_exclude(value) -> list[str]:
    """Item ids from a comma-separated text, a list, or nothing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """The pyfunc form of `Recommenders` with the model a known user is served by (`model`)."""

    def __init__(self, models: Recommenders, model: str = "hybrid", k: int = 10):
        self.models, self.model, self.k = models, model, int(k)

    def recommend(self, user: str, k: int, exclude: list[str]) -> pd.DataFrame:
        m = self.models
        r = m.index.user_pos.get(user)
        if r is not None:
            scores, source = m.scores(self.model, np.array([r]))[0], self.model
            banned = set(m.seen[r].indices)
        elif any(i in m.index.item_pos for i in exclude) and m.content.shape[1]:
            scores, source = np.asarray((m.profile_of(exclude) @ m.content.T).todense()).ravel(), "content"
            banned = set()
        else:
            scores, source = m.popularity.astype("float64"), "popularity"
            banned = set()
        banned |= {m.index.item_pos[i] for i in exclude if i in m.index.item_pos}
        s = np.array(scores, dtype="float64")
        if banned:
            s[list(banned)] = -np.inf
        best = ranking.top_k(s[None, :], k)[0]
        best = best[best >= 0]
        return pd.DataFrame({"user": user, "rank": np.arange(1, len(best) + 1, dtype="int64"),
                             "item": [str(m.index.items[i]) for i in best], "score": s[best].astype("float64"),
                             "source": source})

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "user" not in frame:
            raise ValueError("input needs a 'user' column (the user id)")
        parts = []
        for row in frame.to_dict("records"):
            k = row.get("k")
            k = self.k if k is None or (isinstance(k, float) and np.isnan(k)) else int(k)
            if k < 1:
                raise ValueError(f"k must be at least 1, got {k}")
            parts.append(self.recommend(str(row["user"]), k, parse_exclude(row.get("exclude"))))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=OUTPUT_COLUMNS)


def signature():
    """Inputs user (string), k (long, optional), exclude (string, optional); outputs the ranked rows."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    inputs = Schema([ColSpec(DataType.string, "user"), ColSpec(DataType.long, "k", required=False),
                     ColSpec(DataType.string, "exclude", required=False)])
    outputs = Schema([ColSpec(DataType.string, "user"), ColSpec(DataType.long, "rank"),
                      ColSpec(DataType.string, "item"), ColSpec(DataType.double, "score"),
                      ColSpec(DataType.string, "source")])
    return ModelSignature(inputs, outputs)


def requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("implicit", "scikit-learn", "scipy", "pandas", "numpy", "cloudpickle")]


def save(models: Recommenders, folder: Path, model: str, k: int, meta: dict) -> None:
    """Save as an MLflow pyfunc model with its signature, an input example and mlcycle metadata."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    known = str(models.index.users[0])
    example = pd.DataFrame({"user": [known, "a-user-never-seen"], "k": [k, k], "exclude": ["", ""]})
    mlflow.pyfunc.save_model(
        str(folder), python_model=RecommenderModel(models, model, k), signature=signature(),
        input_example=example, pip_requirements=requirements(),
        code_paths=None,
        metadata={"mlcycle": json.loads(json.dumps({"task": "recommendation", "model": model, "k": k,
                                                    "weight": models.weight,
                                                    "popularity_penalty": models.penalty, **meta}, default=str))},
    )
    provenance.stable_model_identity(folder)  # the same model, the same bytes (no save time, uuid from content)


def load(folder: Path) -> tuple[RecommenderModel, dict]:
    """The pyfunc's Python model (with its Recommenders) and the mlcycle metadata saved with it."""
    meta = model_metadata(Path(folder))
    return mlflow.pyfunc.load_model(str(folder)).unwrap_python_model(), meta


def load_registered(uri: str) -> RecommenderModel:
    """The pyfunc's Python model of a registered version (`models:/<name>/<version>`): the task's
    `load` hook (`registry.load_version`, re-scoring the champion)."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model()
