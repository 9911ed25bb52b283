"""Stage `report`: reports/index.html linking every stage report, with headline metrics and the
data and code versions they came from."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from mlcycle.core import provenance
from mlcycle.core.config import Params
from mlcycle.core.paths import NOTEBOOKS, Paths
from mlcycle.core.spec import FeatureSpec
from mlcycle.stages.evaluate import headline

DESCRIPTIONS = {
    "ingest": "raw tables written to data/raw",
    "validate": "checks of the input table",
    "eda": "distributions, missing values, label by feature, correlations, trend",
    "features": "enrichment (when a hook is set), the columns set aside and the train/valid/test split",
    "train": "model and baseline fitted; iterations and threshold chosen on valid",
    "evaluate": "holdout metrics and curves, model against baseline; slices and fairness; explanations; the gate",
}


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def build_index(paths: Paths, params: Params) -> Path:
    data_path = Path(params.data.path)
    data_path = data_path if data_path.is_absolute() else paths.root / data_path
    evaluate = _read_json(paths.metrics("evaluate")) or {}
    context = {
        "title": params.report.title,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "stages": [
            {"name": s, "href": paths.report_html(s).name, "exists": paths.report_html(s).exists(),
             "about": DESCRIPTIONS.get(s, ""), "notebook": f"notebooks/{nb}"}
            for s, nb in NOTEBOOKS.items() if s != "ingest" or params.ingest
        ],
        "task": params.data.task,
        "target": params.data.target,
        "model_metrics": evaluate.get("model", {}),
        "baseline_metrics": evaluate.get("baseline", {}),
        "headline": headline(FeatureSpec.from_json(paths.feature_spec)) if paths.feature_spec.exists() else [],
        "baseline_columns": params.train.baseline_columns,
        "train": _read_json(paths.metrics("train")) or {},
        "validate": _read_json(paths.metrics("validate")) or {},
        "features": _read_json(paths.metrics("features")) or {},
        "data": {"path": params.data.path, "md5": provenance.file_md5(data_path)},
        "code": provenance.git_state(paths.root),
        "model_name": params.train.model,
        "gate": _read_json(paths.gate_decision) or {},
        "registered": _read_json(paths.registered) or {},
        "model_card": paths.model_card("html").name if paths.model_card("html").exists() else None,
        "cards": [f"{paths.cards.name}/{p.name}" for p in sorted(
            paths.cards.glob("v*.html"), key=lambda p: int(p.stem[1:]) if p.stem[1:].isdigit() else 0)],
        "esc": html.escape,
    }
    env = Environment(loader=PackageLoader("mlcycle", "templates"), autoescape=select_autoescape(["html", "j2"]))
    out = env.get_template("index.html.j2").render(**context)
    paths.index.parent.mkdir(parents=True, exist_ok=True)
    paths.index.write_text(out, encoding="utf-8")
    return paths.index
