"""`mlcycle init`: the one step from a clone to your own data (or to a shipped example).

- `mlcycle init --data FILE --target COL` reads the file and writes params.yaml with what it infers
  (task, positive class, id-like columns, a time column when one parses as dates, with the rule that
  reads it) and everything else at its default, and proposes the schema (`schemas/<file stem>.yaml`).
  It prints each choice so you can confirm or change it; after that, path, target and task (plus the
  time column when the data has one) are all a table needs.
- `mlcycle init --example NAME` writes the params of a shipped example (`examples/NAME/params.yaml`
  holds only what differs from the defaults).

params.yaml is rendered with one comment per key (mlcycle.paramsdoc).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel

from mlcycle.core import config, paramsdoc, personal, schema, tables, tasks
from mlcycle.core.errors import DataError, ParamsError
from mlcycle.core.tables import guess_formats, parse_series

POSITIVE_WORDS = ("yes", "y", "true", "1", "positive", "pos", "churn", "fraud", "default", "late", "bad")
ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid|(^|_)key$|^rownames$)", re.IGNORECASE)
# a column named like a person's name (name, full_name, customer_name, first_name, surname, ...)
PERSON_NAME = re.compile(r"(^|[_\s-])((full|first|last|given|family|middle|customer|contact|person|user)[_\s-]?)?"
                         r"(name|surname|forename)s?$", re.IGNORECASE)
NAME_VALUE = re.compile(r"[A-Z][a-zA-Z'\-\.]*( [A-Z][a-zA-Z'\-\.]*){0,3}")  # 1-4 capitalised words
TEXT_WORDS, TEXT_CHARS = 4.0, 30.0  # free text: on average more words and characters than this
TIME_NAME = re.compile(r"(date|time|_at$|^ts$|timestamp|epoch|day|created|updated)", re.IGNORECASE)
COMMENT_COLUMN = 31


# ---------------------------------------------------------------- params.yaml with comments

def defaults(model: type[BaseModel] = config.Params) -> dict[str, Any]:
    """Every key of a params model at its default (required keys as None), in field order."""
    out: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        key = f.alias or name
        if f.is_required():
            ann = f.annotation
            out[key] = defaults(ann) if isinstance(ann, type) and issubclass(ann, BaseModel) else None
            continue
        value = f.get_default(call_default_factory=True)
        out[key] = value.model_dump(by_alias=True, mode="json") if isinstance(value, BaseModel) else value
    return out


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and v else v
    return out


def _scalar(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=10_000, allow_unicode=True, sort_keys=False).strip().removesuffix("...").strip()


def _line(indent: int, key: str, value: str | None, comment: str | None) -> str:
    text = " " * indent + f"{key}:" + (f" {value}" if value is not None else "")
    if comment:
        text = text.ljust(max(COMMENT_COLUMN, len(text) + 1)) + f"# {comment}"
    return text


def render(raw: dict[str, Any]) -> str:
    """params.yaml text: sections in order, one comment per key from mlcycle.paramsdoc."""
    lines = [paramsdoc.HEADER.rstrip("\n")]

    def walk(d: dict, prefix: str, indent: int) -> None:
        for key, value in d.items():
            dotted = f"{prefix}{key}"
            comment = paramsdoc.KEYS.get(dotted)
            if isinstance(value, dict) and value and all(isinstance(k, str) for k in value) and \
                    not (prefix.startswith("features.enrich.params") or dotted.endswith((".params", ".space"))
                         and not any(isinstance(v, dict) for v in value.values())):
                lines.append(_line(indent, key, None, comment))
                walk(value, f"{dotted}.", indent + 2)
            else:
                lines.append(_line(indent, key, _scalar(value), comment))

    for section, body in raw.items():
        lines.append("")
        for text in paramsdoc.SECTIONS.get(section, "").splitlines():
            lines.append(f"# {text}")
        if isinstance(body, dict) and body:
            lines.append(_line(0, section, None, paramsdoc.KEYS.get(section)))
            walk(body, f"{section}.", 2)
        else:
            lines.append(_line(0, section, _scalar(body), paramsdoc.KEYS.get(section)))
    return "\n".join(lines) + "\n"


def example_params(root: Path, name: str) -> dict[str, Any]:
    """The full params of a shipped example: the defaults with its examples/NAME/params.yaml on top."""
    path = root / "examples" / name / "params.yaml"
    if not path.exists():
        known = sorted(p.name for p in (root / "examples").iterdir() if (p / "params.yaml").exists())
        raise ParamsError(f"no example '{name}' (examples/{name}/params.yaml); shipped examples: {', '.join(known)}")
    raw = merge(defaults(), config.read_yaml(path) or {})
    for t in tasks.all_tasks():  # a task's own section, null by default: its defaults under the example's keys
        if t.params_section and isinstance(raw.get(t.params_section), dict):
            raw[t.params_section] = merge(defaults(t.section_model()), raw[t.params_section])
    raw = config.with_task(raw)
    config.parse(raw, source=f"examples/{name}/params.yaml")
    return raw


def is_shipped(root: Path, text: str) -> bool:
    """Whether params.yaml text is exactly what `init --example` writes for one of the examples."""
    folder = root / "examples"
    for p in sorted(folder.glob("*/params.yaml")) if folder.exists() else []:
        if render(example_params(root, p.parent.name)) == text:
            return True
    return False


def write_params(root: Path, raw: dict[str, Any], force: bool) -> Path:
    """Write params.yaml (checked first); an edited params.yaml is only replaced with force."""
    raw = config.with_task(raw)
    config.parse(raw)
    text = render(raw)
    path = root / "params.yaml"
    if path.exists() and not force and path.read_text() != text and not is_shipped(root, path.read_text()):
        raise ParamsError("params.yaml has edits of yours; pass --force to replace it (git keeps the old one)")
    path.write_text(text)
    return path


# ---------------------------------------------------------------- inferring params from a table

def _near(name: str, columns) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in columns], n=1)
    return f" (did you mean '{close[0]}'?)" if close else f"; columns: {', '.join(map(str, list(columns)[:30]))}"


def infer_task(y: pd.Series) -> str:
    """The data.task `mlcycle init` writes for target column `y`: the default task's guess (a table's:
    many distinct numbers are a regression, anything else classes)."""
    return tasks.default().hook("infer_objective")(y)


def infer_positive(y: pd.Series):
    """The positive class of a binary target: True, 1, a yes-like word, else the rarer class."""
    values = y.dropna().unique().tolist()
    if len(values) != 2:
        return None
    plain = [v.item() if hasattr(v, "item") else v for v in values]
    if all(isinstance(v, bool) for v in plain):  # by type: 0 and 1 equal False and True
        return True
    if set(plain) <= {0, 1}:
        return 1
    for v in plain:
        if str(v).strip().lower() in POSITIVE_WORDS:
            return v
    counts = y.value_counts()
    rare = counts.idxmin()
    return rare.item() if hasattr(rare, "item") else rare


def infer_time(df: pd.DataFrame, target: str, column: str | None) -> tuple[str | None, dict, list[str]]:
    """(time column, its rule {time_format, time_unit}, notes). An integer column is a time only when
    named with --time-column; its unit is proposed from the values' magnitude."""

    notes: list[str] = []
    # columns named like times first; any text column that reads as dates is a candidate
    others = [c for c in df.columns if c != target]
    candidates = [column] if column else sorted(others, key=lambda c: not TIME_NAME.search(str(c)))
    found: list[tuple[str, dict]] = []
    for c in candidates:
        s = df[c]
        if pd.api.types.is_bool_dtype(s):
            continue
        if pd.api.types.is_datetime64_any_dtype(s):
            found.append((c, {}))
        elif pd.api.types.is_numeric_dtype(s):
            if not column:
                continue
            present = s.dropna()
            mag = float(present.abs().median()) if len(present) else 0.0
            if 1e7 <= mag < 1e8 and (present % 1 == 0).all() and guess_formats(present.astype("int64")):
                found.append((c, {"time_format": "%Y%m%d"}))
            else:
                unit = next((u for u, lo in (("ns", 1e17), ("us", 1e14), ("ms", 1e11), ("s", 1e8), ("D", 1e3))
                             if mag >= lo), None)
                if unit is None:
                    raise DataError(f"--time-column '{c}' holds numbers (median {mag:g}) that read as no time unit; "
                                    "set data.time_unit or data.time_format yourself")
                found.append((c, {"time_unit": unit}))
        elif column or s.dropna().nunique() > 1:
            formats = guess_formats(s)
            if formats:
                found.append((c, {} if formats[0] == "ISO8601" else {"time_format": formats[0]}))
                if len(formats) > 1 and formats[0] != "ISO8601":
                    notes.append(f"time column '{c}': formats {formats} all read it; chose {formats[0]!r}: check "
                                 "day and month order")
            elif column:
                raise DataError(f"--time-column '{c}' holds text no known format reads (e.g. "
                                f"{s.dropna().astype('str').head(3).tolist()}); set data.time_format yourself")
    if not found:
        return None, {}, notes
    name, rule = found[0]
    for k, v in rule.items():
        notes.append(f"time column '{name}' is read with data.{k}: {v!r} (check it)")
    parse_series(df[name], name, rule.get("time_format"), rule.get("time_unit"))  # the rule reads every value
    if len(found) > 1:
        notes.append(f"other columns that read as times: {[f for f, _ in found[1:]]}")
    return name, rule, notes


def _text_values(s: pd.Series, sample: int = 2000) -> pd.Series:
    present = s.dropna()
    return present[present.map(lambda v: isinstance(v, str))].head(sample)


def infer_personal(df: pd.DataFrame, exclude: set[str]) -> tuple[list[str], list[str]]:
    """(columns holding personal data, notes with the evidence): the personal-data scanner's
    patterns (e-mail, phone, card number; core/personal.py) first, then columns named like a
    person's name whose values read as names. They go to data.pii_columns, never ids or features."""
    found, notes = [], []
    how = ("never an id or a feature, dropped as the table is read (data.pii_mode: hash keeps a salted digest "
           "instead); not personal? remove it from data.pii_columns")
    for col, kind, hits, checked in personal.scan(df, exclude=exclude):
        found.append(col)
        notes.append(f"personal data: '{col}' ({kind} in {hits:,} of {checked:,} values checked) -> data.pii_columns, {how}")
    for c in df.columns:
        if str(c) in found or c in exclude or not PERSON_NAME.search(str(c)):
            continue
        values = _text_values(df[c])
        if values.empty:
            continue
        share = float(values.map(lambda v: bool(NAME_VALUE.fullmatch(v.strip()))).mean())
        if share >= 0.5:
            found.append(str(c))
            notes.append(f"personal data: '{c}' (named like a person's name; {share:.0%} of {len(values):,} values "
                         f"checked read as names) -> data.pii_columns, {how}")
    return found, notes


def text_evidence(s: pd.Series) -> dict | None:
    """Words and characters a value on average and the share of distinct values, over up to 2,000
    text values of `s`; None for a column of numbers or times or with fewer than two text values."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return None
    values = _text_values(s)
    if len(values) < 2:
        return None
    return {"words": float(values.str.split().str.len().mean()), "chars": float(values.str.len().mean()),
            "distinct": values.nunique() / len(values), "checked": len(values)}


def is_free_text(e: dict) -> bool:
    """Free text: several words and many characters a value, mostly distinct values. An id (one word,
    unique) and a short category (few words, values repeated) are not."""
    return e["words"] > TEXT_WORDS and e["chars"] > TEXT_CHARS and e["distinct"] > 0.5


def infer_text(df: pd.DataFrame, exclude: set[str]) -> tuple[list[str], list[str]]:
    """(free-text columns, notes with the evidence for every text column): free text goes to
    data.text_columns (its words become features, train.text), never ids or categories; the other
    text columns are said to stay categories (or ids), with the same evidence."""
    found, notes = [], []
    for c in df.columns:
        e = None if c in exclude else text_evidence(df[c])
        if e is None:
            continue
        said = (f"{e['words']:.1f} words, {e['chars']:.0f} characters a value on average, {e['distinct']:.0%} "
                f"distinct in {e['checked']:,} values checked")
        if is_free_text(e):
            found.append(str(c))
            notes.append(f"free text: '{c}' ({said}) -> data.text_columns (its words become features, "
                         "train.text); move it to data.drop_columns to leave it out")
        else:
            notes.append(f"not free text: '{c}' ({said}; free text has more than {TEXT_WORDS:.0f} words and "
                         f"{TEXT_CHARS:.0f} characters, over 50% distinct) -> a category or an id")
    return found, notes


def infer_ids(df: pd.DataFrame, exclude: set[str]) -> list[str]:
    """Columns that identify rows (unique text or integers, named like an id), never features.
    `exclude`: the target, the time column, personal and free-text columns (never ids)."""
    out = []
    for c in df.columns:
        s = df[c]
        if c in exclude or len(s) < 2 or pd.api.types.is_float_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        unique = s.notna().all() and s.is_unique
        if unique and (ID_NAME.search(str(c)) or not pd.api.types.is_numeric_dtype(s)):
            out.append(str(c))
    return out


def infer(df: pd.DataFrame, path: str, target: str, task: str | None = None,
          time_column: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The `data` section (and what else the table needs) inferred from `df`, with notes to print."""
    if target not in df.columns:
        raise DataError(f"--target '{target}' is not a column of {path}{_near(target, df.columns)}")
    if time_column and time_column not in df.columns:
        raise DataError(f"--time-column '{time_column}' is not a column of {path}{_near(time_column, df.columns)}")
    y = df[target]
    task = task or infer_task(y)
    notes = [f"task: {task} (target '{target}': {y.dropna().nunique():,} distinct values, {y.dtype})"]
    data: dict[str, Any] = {"path": path, "target": target, "task": task}
    if tasks.target_of(task) == "classes":
        positive = infer_positive(y)
        data["positive_class"] = positive
        if positive is not None:
            notes.append(f"positive class: {positive!r} (the class scored as positive; change data.positive_class)")
    # personal data first: a personal column is never a time, an id, free text or a feature
    pii, pii_notes = infer_personal(df, {target, *([time_column] if time_column else [])})
    if pii:
        data["pii_columns"] = pii
    notes += pii_notes
    tc, rule, time_notes = infer_time(df.drop(columns=pii), target, time_column)
    notes += time_notes
    if tc:
        data["time_column"] = tc
        data.update(rule)
        notes.append(f"time column: '{tc}': the latest rows are held out (split.test_size)")
    else:
        notes.append("no time column: a stratified random split (set data.time_column if the rows have times)")
    text, text_notes = infer_text(df, {target, *pii, *([tc] if tc else [])})
    if text:
        data["text_columns"] = text
    notes += text_notes
    ids = infer_ids(df, {target, *pii, *text, *([tc] if tc else [])})
    if ids:
        data["id_columns"] = ids
        evidence = ", ".join(f"'{c}' ({'named like an id, ' if ID_NAME.search(c) else ''}unique in {len(df):,} rows)"
                             for c in ids)
        notes.append(f"id columns (kept out of the features): {evidence}; remove one from data.id_columns to make "
                     "it a feature")
    chosen: dict[str, Any] = {"data": data}
    own = tasks.for_objective(task).hook("infer_params")  # a task's own section (e.g. the series of a forecast)
    if own is not None:
        section, more = own(df.drop(columns=pii), data)
        chosen.update(section)
        notes += more
    return chosen, notes


def init_from_data(root: Path, file: str, target: str, task: str | None = None, time_column: str | None = None,
                   force: bool = False) -> tuple[Path, Path | None, list[str]]:
    """Infer params from the file, write params.yaml and propose the schema. Returns (params, schema, notes)."""

    p = Path(file)
    full = p if p.is_absolute() else root / p
    rel = str(full.relative_to(root)) if full.is_relative_to(root) else str(full)
    df = tables.read_table(full, what="--data", shown=rel)
    chosen, notes = infer(df, rel, target, task, time_column)
    raw = merge(defaults(), chosen)
    params = config.parse(raw)
    out = write_params(root, raw, force)
    spath = schema.schema_path(params.data, params.validate_, root)
    written = None
    if not spath.exists() or force:
        read = tables.load(params.data, root)
        schema.write(schema.infer(read, params.data, params.validate_), spath, len(read))
        written = spath
    else:
        notes.append(f"kept the existing schema {spath.relative_to(root)} (--force replaces it)")
    return out, written, notes
