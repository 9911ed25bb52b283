"""Stage `report`: reports/index.html linking every stage report, with headline metrics, the
champion's history across versions, the other pages (monitor, replay, benchmarks, model card) and
the data and code versions they came from.

What the registry and the tracking store hold (the history, each stage's run) is read by the caller
and handed in: this layer does not reach the registry."""

from __future__ import annotations

import html
import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from mlcycle.core import provenance, tasks
from mlcycle.core.config import Params
from mlcycle.core.paths import NOTEBOOKS, Paths

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


# the other pages the index links when they exist: file under reports/ -> what it shows
PAGES = {
    "monitor.html": "monitor: drift and live quality of the champion on recent requests (mlcycle monitoring run)",
    "simulation.html": "replay: the loop period by period on past data (mlcycle monitoring simulate)",
    "benchmarks.md": "benchmarks: speed figures against their baselines (make bench)",
}
MOVE_LABELS = {"promote": "promoted", "gate-promote": "promoted by the gate", "rollback": "rolled back to"}


def pages(paths: Paths) -> list[dict]:
    """The monitor, replay and benchmark pages that exist, as links relative to reports/."""
    return [{"href": name, "about": about} for name, about in PAGES.items() if (paths.reports / name).exists()]


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI at `ui_url`."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def history_rows(history: dict | None) -> list[dict]:
    """One row per registered version, oldest first: its gate metric value and decision, whether it
    is the champion, and the moves of the champion alias that made it champion ("promoted",
    "promoted by the gate", "rolled back to")."""
    if not history:
        return []
    moves: dict[str, list[str]] = {}
    for m in history.get("moves", []):
        if m.get("to_version") is not None:
            moves.setdefault(str(m["to_version"]), []).append(MOVE_LABELS.get(m["action"], m["action"]))
    return [{**v, "version": str(v["version"]), "champion": str(v["version"]) == str(history.get("champion")),
             "moves": moves.get(str(v["version"]), []),
             "rollback": "rolled back to" in moves.get(str(v["version"]), [])}
            for v in history.get("versions", [])]


def history_svg(rows: list[dict], width: int = 640, height: int = 220) -> str:
    """A small self-contained SVG chart of the gate metric per version: a line through the versions
    with a value, promotions as green triangles, rollbacks as orange diamonds, the champion ringed.
    An empty string when no version has a gate value."""
    pts = [r for r in rows if r.get("value") is not None]
    if not pts:
        return ""
    left, right, top, bottom = 60, 20, 20, 40
    values = [r["value"] for r in pts]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 0.5
    lo, hi = lo - pad, hi + pad
    n = len(rows)
    x_of = {r["version"]: left + (i + 0.5) * (width - left - right) / n for i, r in enumerate(rows)}

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * (height - top - bottom)

    e = html.escape
    metric = next((r["metric"] for r in pts if r.get("metric")), "gate metric")
    out = [f'<svg id="history-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(metric)} per registered version">',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>']
    for v in (lo + pad, hi - pad) if hi - lo > 2 * pad else (lo + pad,):
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.4g}</text>')
    out.append(f'<text x="{left}" y="{top - 6}" font-size="11" fill="#555">{e(metric)}</text>')
    line = " ".join(f"{x_of[r['version']]:.1f},{y(r['value']):.1f}" for r in pts)
    out.append(f'<polyline points="{line}" fill="none" stroke="#4477aa" stroke-width="1.5"/>')
    for r in rows:
        x = x_of[r["version"]]
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">v{e(r["version"])}</text>')
        if r.get("value") is None:
            continue
        cy = y(r["value"])
        title = f'v{r["version"]}: {metric} {r["value"]:.4f}, {r.get("decision") or "no gate decision"}'
        if r["moves"]:
            title += "; " + ", ".join(r["moves"])
        if r["champion"]:
            out.append(f'<circle class="champion" cx="{x:.1f}" cy="{cy:.1f}" r="9" fill="none" stroke="#222" stroke-width="1.5"/>')
        if r["rollback"]:
            out.append(f'<path class="rollback" d="M{x:.1f},{cy - 7:.1f} L{x + 7:.1f},{cy:.1f} L{x:.1f},{cy + 7:.1f} '
                       f'L{x - 7:.1f},{cy:.1f} Z" fill="#ee7733"><title>{e(title)}</title></path>')
        elif r["moves"]:
            out.append(f'<path class="promotion" d="M{x:.1f},{cy - 7:.1f} L{x + 7:.1f},{cy + 5:.1f} L{x - 7:.1f},{cy + 5:.1f} Z" '
                       f'fill="#228833"><title>{e(title)}</title></path>')
        else:
            out.append(f'<circle class="version" cx="{x:.1f}" cy="{cy:.1f}" r="4" fill="#4477aa"><title>{e(title)}</title></circle>')
    out.append("</svg>")
    return "\n".join(out)


def build_index(paths: Paths, params: Params, history: dict | None = None,
                runs: dict | None = None) -> Path:
    """Write reports/index.html. `history`: the champion's history (lifecycle.registry.history);
    `runs`: {"experiment_id", "pipeline": run id, "stages": {stage: run id}} of the latest pipeline
    execution, linked when `tracking.ui_url` is set."""
    data_path = Path(params.data.path)
    data_path = data_path if data_path.is_absolute() else paths.root / data_path
    evaluate = _read_json(paths.metrics("evaluate")) or {}
    context = {
        "title": params.report.title,
        "stages": [
            {"name": s, "href": paths.report_html(s).name, "exists": paths.report_html(s).exists(),
             "about": DESCRIPTIONS.get(s, ""), "notebook": paths.notebook(s, params.task).relative_to(paths.root).as_posix()}
            for s in NOTEBOOKS if s != "ingest" or params.ingest
        ],
        "task": params.data.task,
        "target": params.data.target,
        "model_metrics": evaluate.get("model", {}),
        "baseline_metrics": evaluate.get("baseline", {}),
        "section": tasks.active(params).hook("index")(paths, params, _read_json),
        "validate": _read_json(paths.metrics("validate")) or {},
        "data": {"path": params.data.path, "md5": provenance.file_md5(data_path)},
        "code": provenance.git_state(paths.root),
        "gate": _read_json(paths.gate_decision) or {},
        "registered": _read_json(paths.registered) or {},
        "model_card": paths.model_card("html").name if paths.model_card("html").exists() else None,
        "cards": [f"{paths.cards.name}/{p.name}" for p in sorted(
            paths.cards.glob("v*.html"), key=lambda p: int(p.stem[1:]) if p.stem[1:].isdigit() else 0)],
        "pages": pages(paths),
        "history": history_rows(history),
        "history_svg": Markup(history_svg(history_rows(history))),
        "history_model": (history or {}).get("model"),
        "esc": html.escape,
    }
    ui = params.tracking.ui_url
    if ui and runs and runs.get("experiment_id"):
        exp = runs["experiment_id"]
        context["pipeline_url"] = run_url(ui, exp, runs["pipeline"]) if runs.get("pipeline") else None
        for st in context["stages"]:
            rid = (runs.get("stages") or {}).get(st["name"])
            st["run_url"] = run_url(ui, exp, rid) if rid else None
    env = Environment(loader=PackageLoader("mlcycle", "templates"), autoescape=select_autoescape(["html", "j2"]))
    out = env.get_template("index.html.j2").render(**context)
    paths.index.parent.mkdir(parents=True, exist_ok=True)
    paths.index.write_text(out, encoding="utf-8")
    return paths.index
