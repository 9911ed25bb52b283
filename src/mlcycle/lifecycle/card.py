"""Model cards: an HTML and a Markdown card for every registered model version, built from the
records of its own runs.

The evaluate stage writes the card of the version it judged, after the gate: `reports/model_card.
{html,md}` and the record they are rendered from, `reports/model_card.json`. The tracking hook logs
the three to the evaluate run under `model_card/` and tags the model version with their artifact
URIs (`model_card`, `model_card.run_id`). `mlcycle model card --model VERSION` renders the card of any version
again from MLflow (its evaluate run's record, the version's current aliases and tags, the audit
log), since promotions and rollbacks after the gate change its history.

Sources: the model version (tags: gate decision, data hash, commit; aliases), the train run
(params, metrics, model family), `dvc.lock` (DVC hashes of the raw and processed data),
`reports/metrics/*.json`, `reports/fairness.json`, `reports/explanations.json`, the gate
decision, the audit log, and the user-edited intended-use file (`evaluate.intended_use`).

Every task's card has the same generic parts (the version, intended use, source data and its DVC
hashes, parameters, gate decision, audit history). What lies between them is the task's: the table
card's features, holdout metrics, fairness and explanations by default, or, for a task whose `Task`
names `card_sections` (core/tasks.py, e.g. the recommender), the parts that function returns,
recorded under `task` in the card's record so `mlcycle model card --model VERSION` renders them again without the
task's code.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
from pathlib import Path

from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape

from mlcycle.core import config, literal, tasks
from mlcycle.core import record as handover
from mlcycle.core.errors import CardError
from mlcycle.core.spec import FeatureSpec
from mlcycle.core.stats import headline

RECORD, HTML, MD = "model_card.json", "model_card.html", "model_card.md"
ARTIFACT_DIR = "model_card"
NOT_WRITTEN = "Not written yet: describe the intended use in {file} (quoted here as written)."



def read_json(path: Path):
    """A JSON file's content, or None when there is no such file."""
    return json.loads(path.read_text()) if path.exists() else None


def document(documents: dict | None, key: str, path: Path):
    """What a card reads of `key`: the evaluate stage's own result when it gave its `documents`
    (its notebook run with `write = False`), else the file it writes at `path`."""
    return read_json(path) if documents is None else documents.get(key)


TEMPLATE_MARK = "<!-- mlcycle: not written yet -->"  # the shipped intended_use.md, until its owner writes it


def intended_use(path: Path, cfg, spec=None, purpose: str | None = None) -> str:
    """The intended-use text: the file as written; while it is the shipped template (or missing), a
    sentence derived from the data and target (a task's card: its `purpose`), and what to do."""
    text = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    if text and TEMPLATE_MARK not in text:
        return text
    if purpose is None:
        code, text = literal.md_code, literal.md_text  # names and values from the data, as typed
        what = (f"the value of {code(spec.target)}" if tasks.target_of(spec.task) == "numbers" else
                f"{code(spec.label)} ({text(spec.label_rule)}), scored as the probability of "
                f"{text(repr(spec.positive_class))}" if spec.positive_class is not None
                else f"the class of {code(spec.target)}")
        purpose = f"Predicts {what} from the columns of {code(cfg.data.path)}."
    return ("**Intended use (derived from the data, not written yet).** " + purpose + " "
            + NOT_WRITTEN.format(file=cfg.evaluate.intended_use))


def lock_hashes(lock_file: Path, data_path: str) -> dict[str, str | None]:
    """DVC's md5 of the input table (features stage dep) and of data/processed (train stage dep)."""
    out: dict[str, str | None] = {"source_md5": None, "processed_md5": None}
    if not lock_file.exists():
        return out
    stages = (config.read_yaml(lock_file) or {}).get("stages", {})
    for dep in stages.get("features", {}).get("deps", []):
        if dep.get("path") == data_path:
            out["source_md5"] = dep.get("md5")
    for dep in stages.get("train", {}).get("deps", []):
        if dep.get("path") == "data/processed":
            out["processed_md5"] = dep.get("md5")
    return out


def local_times(t, timezone: str | None):
    """Times in the data's own time zone: `timezone` (data.timezone) when given, the zone of
    tz-aware times otherwise; naive times are as read (the pipeline keeps times with an offset as naive
    UTC), so they are read as UTC before converting to `timezone`."""
    if not timezone:
        return t
    if getattr(t.dt, "tz", None) is None:
        t = t.dt.tz_localize("UTC")
    return t.dt.tz_convert(timezone)


def periods(paths, time_column: str | None, timezone: str | None = None) -> dict:
    """First and last time of the training rows (train + valid) and of the holdout, in the data's
    own time zone (`local_times`); `period_zone` names it (None: as the data has the times). Dates
    when every time is a midnight, else to the minute (a split at midnight UTC is not one in New York)."""
    if not time_column:
        return {"train_period": None, "test_period": None, "period_zone": None}
    import pandas as pd

    def span(parts):
        t = pd.concat([pd.read_parquet(paths.split_file(p), columns=[time_column])[time_column] for p in parts])
        t = local_times(pd.to_datetime(t.dropna()), timezone)
        if not len(t):
            return None
        fmt = "%Y-%m-%d" if (t == t.dt.normalize()).all() else "%Y-%m-%d %H:%M"
        return [t.min().strftime(fmt), t.max().strftime(fmt)]

    return {"train_period": span(["train", "valid"]), "test_period": span(["test"]), "period_zone": timezone}


def used_columns(spec, importance: list[dict] | None = None, aside: list[str] | None = None) -> dict:
    """The columns the model uses and those it does not, from the fitted feature spec: the inputs a
    request sends (`spec.inputs`, what permutation importance shuffles, the time column among them when
    the model derives calendar parts from it) and the features derived from them. A column the
    importance table ranks is always listed as used, so the two cannot disagree."""
    ranked = [str(i["feature"]) for i in importance or [] if i.get("feature") is not None]
    inputs = list(dict.fromkeys([*spec.inputs, *ranked]))
    candidates = [spec.time_column, *spec.id_columns, *spec.passthrough, *(aside or [])]
    return {"inputs": inputs, "numeric": list(spec.numeric), "categorical": list(spec.categorical),
            "text": list(spec.text),
            "calendar": list(spec.calendar) if spec.time_column in inputs else [],
            "time_column": spec.time_column if spec.time_column in inputs else None,
            "not_used": [c for c in dict.fromkeys(candidates) if c and c not in inputs]}


def family_parameters(parameters: dict, family: str | None) -> dict:
    """The train parameters that shape a model of `family`: each family's own settings
    (`config.FAMILY_SETTINGS`) only for that family; the shared ones (threshold, seed, ...) always. A
    family not known there (`auto` before the selection, another task's model): all of them."""
    if family not in config.FAMILY_SETTINGS:
        return dict(parameters)
    own = {k for f, names in config.FAMILY_SETTINGS.items() if f != family for k in names}
    own -= set(config.FAMILY_SETTINGS[family])
    return {k: v for k, v in parameters.items() if k not in own}


def image(path: Path) -> str | None:
    """A PNG as a data URI, so the HTML card is one self-contained file wherever it is opened."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode() if path.exists() else None


def version_history(audit: list[dict], version: str) -> list[dict]:
    """Audit entries that moved this version (gate decisions, promotions, rollbacks)."""
    v = str(version)
    # a gate rejection moves no alias, so it names the version only in its reason ("version 7 not promoted ...")
    return [{k: e.get(k) for k in ("when", "action", "from_version", "to_version", "reason", "who")}
            for e in audit if v in (e.get("from_version"), e.get("to_version"))
            or str(e.get("reason", "")).startswith(f"version {v} ")]


def limitations(record: dict) -> list[str]:
    """Limits that follow from the records themselves (the user's own go in the intended-use file); a
    task's card: those its task recorded (`record["task"]["limitations"]`)."""
    if "task" in record:
        return list(record["task"].get("limitations") or [])
    out = []
    data = record["data"]
    if data.get("test_period"):
        zone = f" {data['period_zone']}" if data.get("period_zone") else ""
        out.append(f"Evaluated on one holdout period ({data['test_period'][0]} to {data['test_period'][1]}{zone}); "
                   "performance on later data is not measured here.")
    fair = record.get("fairness") or {}
    for col, info in (fair.get("columns") or {}).items():
        small = [g["group"] for g in info["groups"] if g.get("small")]
        if small:
            shown = ", ".join(literal.label(g, 60) for g in small[:8]) + (" ..." if len(small) > 8 else "")
            out.append(f"{col}: {len(small)} group(s) with fewer than {fair['min_group_size']} holdout rows "
                       f"({shown}): their metrics are uncertain and they are left out of the gaps.")
    if not [c for c, i in (fair.get("columns") or {}).items() if "sensitive" in i["role"]]:
        out.append("No sensitive attribute was assessed (evaluate.sensitive is empty): fairness across "
                   "people is unknown.")
    if not record["gate"].get("fairness_criteria"):
        out.append("The gate applied no fairness bound (gate.fairness is unset).")
    if fair.get("bootstrap"):
        out.append(f"Intervals are 95% percentile bootstrap intervals ({fair['bootstrap']} resamples within "
                   "each group); a gap's interval leans high when the true gap is near zero.")
    out.append("Contributions of single rows (`mlcycle model explain`) change one feature at a time and do not "
               "add up to the prediction.")
    return out


def collect(paths, cfg, client=None, name: str | None = None, version: str | None = None,
            audit: list[dict] | None = None, documents: dict | None = None) -> dict:
    """The card's record for `version`, from the workspace's files and (when tracking is on) MLflow.

    documents: the evaluate stage's own results by name (`evaluate`, `fairness`, `explanations`,
    `gate`: what it would write to reports/), used instead of those files when the stage did not
    write them (its notebook run with `write = False`); the card then has no figures.

    A task whose `Task.card_sections` names a function gets the generic parts and that function's
    (`task_record`); the others, the table card below."""

    own = tasks.active(cfg).card()
    if own is not None:
        return task_record(paths, cfg, own, client, name, version, audit, documents)
    spec = FeatureSpec.from_json(paths.feature_spec)
    docs = None if documents is None else {k: json.loads(json.dumps(v, default=str)) for k, v in documents.items()}

    def doc(key: str, path: Path):
        return document(docs, key, path)

    evaluate = doc("evaluate", paths.metrics("evaluate")) or {}
    feats = read_json(paths.metrics("features")) or {}
    decision = doc("gate", paths.gate_decision) or {}
    fair = doc("fairness", paths.fairness)
    expl = doc("explanations", paths.explanations) or {}
    intended = Path(cfg.evaluate.intended_use)
    intended = intended if intended.is_absolute() else paths.root / intended
    record: dict = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "model": {"name": name, "version": None if version is None else str(version), "aliases": [],
                  "created": None, "train_run_id": None, "git_commit": None, "family": cfg.train.model},
        "intended_use": intended_use(intended, cfg, spec),
        "intended_use_file": cfg.evaluate.intended_use,
        "data": {"source": cfg.data.path, **lock_hashes(paths.root / "dvc.lock", cfg.data.path),
                 "target": spec.target, "task": spec.task, "label_rule": spec.label_rule,
                 "positive_class": spec.positive_class, "time_column": spec.time_column,
                 "rows": {k: feats.get(f"{k}_rows") for k in ("train", "valid", "test")},
                 **periods(paths, spec.time_column, cfg.data.timezone)},
        "features": used_columns(spec, expl.get("importance"), cfg.data.aside_columns),
        "parameters": family_parameters({k: v for k, v in cfg.train.model_dump(mode="json").items() if k != "search"},
                                        cfg.train.model),
        "selected": {},
        "metrics": {"headline": headline(spec), "model": evaluate.get("model", {}),
                    "baseline": evaluate.get("baseline", {}), "intervals": evaluate.get("intervals", {}).get("model", {})},
        "fairness": fair,
        "explanations": {"importance": expl.get("importance", [])[:15], "scoring": expl.get("scoring"),
                         "rows": expl.get("rows"), "pdp_features": expl.get("pdp_features", []),
                         "figures": {n: image(paths.figures("evaluate") / f"{n}.png") if docs is None else None
                                     for n in ("importance", "partial_dependence")}},
        "gate": {"outcome": decision.get("outcome"), "summary": decision.get("summary"), "note": decision.get("note"),
                 "criteria": decision.get("criteria", []),
                 "fairness_criteria": [c for c in decision.get("criteria", []) if "gate.fairness" in c["criterion"]]},
        "history": version_history(audit or [], version) if version else [],
    }
    if client is not None and name and version:
        refresh_from_mlflow(record, client, name, version)
    record["parameters"] = family_parameters(record["parameters"], record["model"]["family"])
    record["limitations"] = limitations(record)
    return record


def task_record(paths, cfg, parts_of, client=None, name: str | None = None, version: str | None = None,
                audit: list[dict] | None = None, documents: dict | None = None) -> dict:
    """The card's record for a task that provides its own parts: `parts_of(paths, cfg, documents)`
    (documents: as in `collect`, already JSON values; None: the task reads the stage's files) returns

    - family: the model family shown in the header (None: the train run's `mlcycle.model_family` tag)
    - purpose: one sentence, the intended use until the intended-use file is written
    - data: {label: value} rows of the training-data table, after the source and its DVC hashes
    - sections: [{title, text?, table? {columns, rows}, bullets?, figure? (a data URI)}], in order,
      between the parameters and the limitations
    - limitations: what its own figures say a user of the model should know
    """
    task = tasks.active(cfg)
    docs = None if documents is None else json.loads(json.dumps(documents, default=str))
    parts = parts_of(paths, cfg, docs)
    decision = document(docs, "gate", paths.gate_decision) or {}
    intended = Path(cfg.evaluate.intended_use)
    intended = intended if intended.is_absolute() else paths.root / intended
    section = task.params_section or "train"
    values = getattr(cfg, section, None)
    record: dict = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "model": {"name": name, "version": None if version is None else str(version), "aliases": [],
                  "created": None, "train_run_id": None, "git_commit": None, "family": parts.get("family")},
        "task": {"name": task.name, "objective": cfg.data.task, "params_section": section,
                 "sections": json.loads(json.dumps(parts.get("sections") or [], default=str)),
                 "limitations": [str(line) for line in parts.get("limitations") or []]},
        "intended_use": intended_use(intended, cfg, purpose=parts.get("purpose") or f"A {task.name} model "
                                     f"trained on `{cfg.data.path}`."),
        "intended_use_file": cfg.evaluate.intended_use,
        "data": {"source": cfg.data.path, **lock_hashes(paths.root / "dvc.lock", cfg.data.path),
                 "task": cfg.data.task, "details": {str(k): v for k, v in (parts.get("data") or {}).items()}},
        "parameters": {k: v for k, v in (values.model_dump(mode="json") if values is not None else {}).items()
                       if k != "search"},
        "selected": {},
        "gate": {"outcome": decision.get("outcome"), "summary": decision.get("summary"), "note": decision.get("note"),
                 "criteria": decision.get("criteria", [])},
        "history": version_history(audit or [], version) if version else [],
    }
    if client is not None and name and version:
        refresh_from_mlflow(record, client, name, version)
    record["model"]["family"] = record["model"]["family"] or task.name
    record["limitations"] = limitations(record)
    return record


def refresh_from_mlflow(record: dict, client, name: str, version: str) -> dict:
    """The parts that live in MLflow: the version's aliases, tags and train run."""
    mv = client.get_model_version(name, str(version))
    t = mv.tags or {}
    m = record["model"]
    m.update(version=str(mv.version), aliases=list(mv.aliases or []), train_run_id=mv.run_id,
             git_commit=t.get("git_commit"),
             created=dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    if t.get("data_md5"):  # what this version was trained on, recorded when it was registered
        record["data"]["processed_md5"] = t["data_md5"]
    if t.get("gate.decision"):
        record["gate"]["outcome"] = t["gate.decision"]
        record["gate"]["summary"] = t.get("gate.summary", record["gate"].get("summary"))
    try:
        run = client.get_run(mv.run_id)
        if "task" not in record or not m.get("family"):  # a task's own family (its served model) stays
            m["family"] = run.data.tags.get("mlcycle.model_family", m["family"])
        params = run.data.params
        section = (record.get("task") or {}).get("params_section") or "train"  # the params that shape the model
        record["parameters"] = {k[len(section) + 1:]: v for k, v in sorted(params.items())
                                if k.startswith(f"{section}.") and not k.startswith(f"{section}.search.")} or record["parameters"]
        record["selected"] = {k[len("selected."):]: v for k, v in sorted(params.items()) if k.startswith("selected.")}
        record["train_metrics"] = dict(sorted(run.data.metrics.items()))
    except Exception as exc:  # a card must not fail because a run was deleted; say so
        record["train_metrics"] = {}
        record["model"]["note"] = f"train run not readable: {type(exc).__name__}"
    return record


def render(record: dict) -> tuple[str, str]:
    """(html, markdown) of a record.

    Every value is shown as typed: the HTML card escapes all it prints (autoescape; control
    characters as escapes, `literal.visible`), the Markdown card escapes each value from the data
    (`md` and `code` filters: a group `a|b` stays in its cell, `<script>` is text)."""
    env = Environment(loader=PackageLoader("mlcycle", "templates"), autoescape=True, finalize=_html_value,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["cell"] = _cell
    env.filters["text"] = _html_text
    env.filters["markdown"] = markdown_html
    env.filters["param"] = _param
    ctx = {"r": record, "interval": _interval, "metric_keys": _metric_keys, "group_cell": group_cell}
    html = env.get_template("model_card.html.j2").render(**ctx)
    md = Environment(loader=PackageLoader("mlcycle", "templates"), autoescape=False, trim_blocks=True,
                     lstrip_blocks=True, finalize=lambda v: literal.visible(v, keep="\n\t") if isinstance(v, str) else v)
    md.filters["num"] = _num
    md.filters["cell"] = _md_cell
    md.filters["text"] = _md_text
    md.filters["md"] = literal.md_text
    md.filters["code"] = literal.md_code
    md.filters["param"] = lambda v: _md_cell(_param(v))
    return html, md.get_template("model_card.md.j2").render(**ctx)


def write(record: dict, folder: Path, stem: str = "model_card") -> dict[str, Path]:
    # reports/model_card.* by default: the same names as Paths.model_card
    """Write the record and its two renderings into folder; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    html, md = render(record)
    out = {"json": folder / f"{stem}.json", "html": folder / f"{stem}.html", "md": folder / f"{stem}.md"}
    out["json"].write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
    out["html"].write_text(html, encoding="utf-8")
    out["md"].write_text(md, encoding="utf-8")
    model = record.get("model") or {}
    if model.get("name") and model.get("version"):  # under the runner: logged with the stage run, linked from the version
        handover.artifacts([out["json"], out["html"], out["md"]], ARTIFACT_DIR)
        handover.version_tags(model["name"], model["version"], {
            "model_card": f"{{artifact_uri}}/{ARTIFACT_DIR}/{out['html'].name}",
            "model_card.markdown": f"{{artifact_uri}}/{ARTIFACT_DIR}/{out['md'].name}",
            "model_card.run_id": "{run_id}"})
    return out


def attach(client, name: str, version: str, run_id: str, files: list[Path]) -> str:
    """Log the card files to `run_id` under model_card/ and point the model version at them."""
    for f in files:
        client.log_artifact(run_id, str(f), ARTIFACT_DIR)
    base = f"{client.get_run(run_id).info.artifact_uri}/{ARTIFACT_DIR}"
    client.set_model_version_tag(name, str(version), "model_card", f"{base}/{HTML}")
    client.set_model_version_tag(name, str(version), "model_card.markdown", f"{base}/{MD}")
    client.set_model_version_tag(name, str(version), "model_card.run_id", run_id)
    return f"{base}/{HTML}"


def regenerate(client, name: str, version: str, audit: list[dict], out_dir: Path) -> dict[str, Path]:
    """The card of any registered version, again: its evaluate run's record with the version's current
    aliases, tags and audit history; written to out_dir as v<version>.{html,md,json} and re-attached."""
    import tempfile

    try:
        mv = client.get_model_version(name, str(version))
    except Exception:
        raise CardError(f"model '{name}' has no version {version}; see `mlcycle model list`") from None
    run_id = (mv.tags or {}).get("model_card.run_id")
    if not run_id:
        raise CardError(f"model '{name}' version {version} has no card record: it was never evaluated "
                        "(the evaluate stage writes the first card); run `dvc repro` for it")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bar in a CLI's output
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, f"{ARTIFACT_DIR}/{RECORD}", tmp)
        record = json.loads(Path(local).read_text())
    record["generated"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    refresh_from_mlflow(record, client, name, version)
    if "task" not in record:
        upgrade(record)
    record["history"] = version_history(audit, version)
    record["limitations"] = limitations(record)
    files = write(record, out_dir, f"v{version}")
    with tempfile.TemporaryDirectory() as tmp:  # re-attached under the names the version tag points at
        staged = []
        for key, fname in (("json", RECORD), ("html", HTML), ("md", MD)):
            target = Path(tmp) / fname
            target.write_bytes(files[key].read_bytes())
            staged.append(target)
        attach(client, name, version, run_id, staged)
    return files


def upgrade(record: dict) -> dict:
    """A table card's record written before the card listed used columns from the feature spec
    (`features.not_features`: the time column was listed as unused although the model derives
    features from it): the columns the importance table ranks move to the used ones; only the chosen
    family's parameters stay."""
    feats = record.get("features") or {}
    if "not_used" not in feats:
        ranked = {str(i.get("feature")) for i in (record.get("explanations") or {}).get("importance") or []}
        feats["not_used"] = [c for c in feats.pop("not_features", []) if c not in ranked]
        feats.setdefault("inputs", [*feats.get("numeric", []), *feats.get("categorical", []),
                                    *sorted(ranked - {*feats.get("numeric", []), *feats.get("categorical", [])})])
        record["features"] = feats
    record["parameters"] = family_parameters(record.get("parameters") or {}, (record.get("model") or {}).get("family"))
    return record


def group_cell(g: dict, metric: str, digits: int = 3) -> str:
    """A group's metric in the card: "0.712 [0.690, 0.731]"; the value alone when the interval has no
    width (every resample the same value); "n/a (reason)" when the metric is undefined for the group."""
    v, lo, hi = g.get(metric), g.get(f"{metric}_lo"), g.get(f"{metric}_hi")
    if v is None or (isinstance(v, float) and v != v):
        return f"n/a ({(g.get('undefined') or {}).get(metric, 'undefined for this group')})"
    if lo is None or hi is None or lo == hi:
        return _num(v, digits)
    return f"{_num(v, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def markdown_html(text: str) -> Markup:
    """Markdown (the intended-use file) as HTML; raw HTML in it is escaped, not passed through."""
    import mistune

    return Markup(mistune.create_markdown(escape=True)(str(text or "")))


def _num(v, digits: int = 4) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "-" if v != v else f"{v:.{digits}f}"
    return str(v)


def _param(v) -> str:
    """A parameter's value as params.yaml spells it: null, not None; a list in JSON."""
    if v is None or v == "None":
        return "null"
    if isinstance(v, list | tuple | dict):
        return json.dumps(v)
    return str(v)


def _cell(v) -> str:
    """A value in a task section's table: a number as `_num` writes it, a list as its items."""
    return ", ".join(map(str, v)) if isinstance(v, list | tuple) else _num(v)


def _html_text(v):
    """A task's text in the HTML card: escaped, its `code` spans as <code> (as Markdown shows them)."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(v))))


def _html_value(v):
    """What the HTML card prints of a value: text with its control characters as escapes (then
    escaped by autoescape); HTML the card made itself (Markup) as it is."""
    return literal.visible(v) if isinstance(v, str) and not isinstance(v, Markup) else v


def _md_cell(v) -> str:
    """`_cell` in a Markdown table: escaped (`literal.md_text`), so no `|` or line break ends the cell."""
    return literal.md_text(_cell(v))


def _md_text(v) -> str:
    """A task's text in the Markdown card: its `code` spans kept, the rest escaped (`literal.md_text`)."""
    parts = re.split(r"(`[^`\n]+`)", str(v))
    return "".join(p if i % 2 else literal.md_text(p) for i, p in enumerate(parts))


def _metric_keys(groups: list[dict]) -> list[str]:
    """The per-group metric names of a fairness table (not the interval bounds)."""
    first = groups[0] if groups else {}
    return [k for k in first if k not in ("column", "group", "n", "small", "undefined") and not k.endswith(("_lo", "_hi"))]


def _interval(ci: dict, metric: str) -> str:
    lo, hi = ci.get(f"{metric}_lo"), ci.get(f"{metric}_hi")
    return "" if lo is None or hi is None else f"[{lo:.4f}, {hi:.4f}]"
