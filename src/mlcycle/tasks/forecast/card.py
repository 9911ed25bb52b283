"""The forecast task's parts of its model card (`Task.card_sections`): `lifecycle/card.py` builds the
card of every task from its generic parts (the version, intended use, source data and DVC hashes,
parameters, gate decision, audit history) and these.

- data: the series, their step and season, first and last time, the horizon, the series left out
  as too short, the steps filled;
- sections: every family's mean metrics on the rolling-origin backtest (the chosen one marked), the
  model against the seasonal naive on the held-out horizon, the worst series, the intervals;
- limitations: what those figures say a user of the forecasts should know.

Read from the evaluate stage's documents (`documents`: what it would write to reports/, given when
it did not write them) or its files, with the features and train stages' metrics
(reports/metrics/features.json, train.json) and the backtest per window (models/search.json).
"""

from __future__ import annotations

from pathlib import Path

from mlcycle.lifecycle.card import document, image, read_json
from mlcycle.tasks.forecast import TASK
from mlcycle.tasks.forecast.params import METRICS
from mlcycle.tasks.forecast.series import ID, named
from mlcycle.tasks.forecast.stages import BASELINE

FAMILY_NAMES = {"seasonal_naive": "seasonal naive (each step repeats the value one season earlier)",
            "ets": "exponential smoothing (statsmodels, one fit per series)",
            "global": "global gradient-boosted model (mlforecast, one model over every series)"}
COVERAGE_SLACK = 0.05  # coverage this far below nominal is a limitation: the intervals are too narrow
MOST_NAMED = 5  # series named in a limitation
METRIC_NAMES = {"mase": "MASE", "smape": "sMAPE", "rmse": "RMSE"}


def card_documents(evaluated: dict, worst, decision: dict, figures: bool = False) -> dict:
    """What the model card reads of this evaluation (`card.collect(..., documents=...)`), named as the
    evaluate stage writes it: `evaluate` (reports/metrics/evaluate.json, `stages.metrics_document`),
    `explanations` (the worst series, `stages.evaluate`'s `worst` table), `gate` (the gate's document,
    `mlcycle.lifecycle.gate.document`). figures: the stage saved its figures, so the HTML card embeds them."""
    return {"evaluate": evaluated, "explanations": {"examples": worst.to_dict("records")}, "gate": decision,
            "figures": figures}


def _time(value) -> str:
    """A time as features.json writes it, without a midnight's clock."""
    return str(value).removesuffix(" 00:00:00")


def family(name: str | None) -> str:
    """The chosen family as the card's header shows it."""
    if not name:
        return "forecast"
    return f"{name}: {FAMILY_NAMES[name]}" if name in FAMILY_NAMES else str(name)


def backtest_table(backtest: dict, chosen: str | None) -> dict:
    """{columns, rows}: every family's mean MASE, sMAPE and RMSE over the backtest's windows, best
    first, the chosen family and the baseline marked."""
    rows = []
    for name, m in sorted(backtest.items(), key=lambda kv: kv[1].get("mase", float("inf"))):
        mark = " (chosen)" if name == chosen else " (baseline)" if name == BASELINE else ""
        rows.append([f"{name}{mark}", *(m.get(k) for k in METRICS)])
    return {"columns": ["family", *METRICS], "rows": rows}


def windows_of(search: dict | None) -> int | None:
    """The backtest's windows, from models/search.json's trials (one per family and window, and the means)."""
    trials = (search or {}).get("trials") or []
    return len({str(t.get("window")) for t in trials if str(t.get("window")) != "mean"}) or None


def losing(examples: list[dict]) -> list[dict]:
    """The worst series where the model's MASE is not below the seasonal naive's, worst first."""
    return [e for e in examples if e.get("baseline_mase") is not None and e.get("mase") is not None
            and e["mase"] >= e["baseline_mase"]]


def limitations(evaluated: dict, examples: list[dict], feats: dict, cfg) -> list[str]:
    """What the evaluation says a user of the forecasts should know, from its own figures."""
    fc = cfg.forecasting
    m, b = evaluated.get("model") or {}, evaluated.get("baseline") or {}
    nominal = evaluated.get("nominal_coverage", fc.coverage)
    out = []
    cov = m.get("coverage")
    if cov is not None and cov == cov and cov < nominal - COVERAGE_SLACK:
        out.append(f"the {nominal:.0%} intervals hold {cov:.1%} of the held-out values, "
                   f"{nominal - cov:.1%} below nominal: they are too narrow for these series (more "
                   "`forecasting.backtest_windows` give the conformal widths more errors to learn from)")
    if m.get("mase") is not None and b.get("mase") is not None and m["mase"] >= b["mase"]:
        out.append(f"on the held-out horizon its MASE ({m['mase']:.4f}) is not below the seasonal naive's "
                   f"({b['mase']:.4f})")
    share = evaluated.get("beats_baseline_share")
    if share is not None and share < 1.0:
        total = m.get("series")
        count = f" ({round((1 - share) * total):,} of {total:,})" if total else ""
        worst = losing(examples)[:MOST_NAMED]
        shown = ("; the worst of them: " + ", ".join(f"'{e[ID]}' (MASE {e['mase']:.2f}, seasonal naive "
                                                     f"{e['baseline_mase']:.2f})" for e in worst)) if worst else ""
        out.append(f"it does not beat the seasonal naive on {1 - share:.0%} of the series{count} by MASE{shown}: "
                   "for those, repeating the last season did better")
    left = feats.get("left_out_series") or []
    if left:
        out.append(f"left out as shorter than {feats.get('min_length', '-')} steps: {len(left):,} series "
                   f"({named(left, MOST_NAMED)}); the model holds no history of them and was not judged on "
                   "them (a caller may send a series' own history)")
    if feats.get("filled_rows"):
        out.append(f"{feats['filled_rows']:,} missing steps were filled by interpolation and count as "
                   "observations wherever they fall (training, backtest or held-out horizon)")
    out.append(f"it forecasts at most {feats.get('horizon', fc.horizon)} steps ahead (`forecasting.horizon`): a longer horizon is refused, "
               "and only that horizon was held out and judged")
    last = feats.get("last_time")
    out.append("judged on one held-out horizon per series" + (f", ending {_time(last)}" if last else "")
               + ": quality on later data is not measured here (actuals sent to `POST /feedback` measure it)")
    if not TASK.releases:
        out.append("`POST /forecast` answers from the champion only: no canary or shadow release for this task")
    return out


def sections(paths, cfg, documents: dict | None = None) -> dict:
    """The forecast's card parts (see `mlcycle.lifecycle.card.task_record`). documents: the evaluate
    stage's `evaluate`, `explanations` and (optionally) `figures` (true: the stage saved its figures),
    given when it did not write its files; None: read reports/."""

    def doc(key: str, path: Path):
        return document(documents, key, path)

    fc = cfg.forecasting
    evaluated = doc("evaluate", paths.metrics("evaluate")) or {}
    examples = (doc("explanations", paths.explanations) or {}).get("examples") or []
    feats = read_json(paths.metrics("features")) or {}
    trained = read_json(paths.metrics("train")) or {}
    chosen = evaluated.get("family") or trained.get("chosen")
    m, b = evaluated.get("model") or {}, evaluated.get("baseline") or {}
    nominal = evaluated.get("nominal_coverage", fc.coverage)
    h = feats.get("horizon", fc.horizon)

    out_sections = []
    if trained.get("backtest"):
        windows = windows_of(read_json(paths.search)) or fc.backtest_windows
        metric = METRIC_NAMES.get(trained.get("metric") or fc.metric, fc.metric)
        out_sections.append({
            "title": "Backtest: the families compared",
            "text": (f"Rolling-origin backtest before the held-out horizon: {windows} window(s), {fc.step()} steps "
                     f"apart, each forecasting {h} steps from everything before it, every family refitted at each "
                     f"origin. The lowest mean {metric} over the windows chose "
                     f"`{chosen}`; the per-window figures are in models/search.json."),
            "table": backtest_table(trained["backtest"], chosen),
        })
    if m:
        rows = [[f"{chosen or 'model'} (model)", *(m.get(k) for k in (*METRICS, "coverage", "series"))],
                [f"{BASELINE} (baseline)", *(b.get(k) for k in (*METRICS, "coverage", "series"))]]
        share = evaluated.get("beats_baseline_share")
        out_sections.append({
            "title": "The held-out horizon: model against seasonal naive",
            "text": (f"Each series' last {h} steps, never used for any choice, forecast from everything before "
                     "them. MASE: the mean absolute error over that of the seasonal naive within the series' own "
                     "history (below 1 beats it), the mean over series; sMAPE in [0, 1], the mean over series; "
                     f"RMSE over every point. coverage: the share of held-out values inside the {nominal:.0%} "
                     "intervals."
                     + (f" The model beats the seasonal naive on {share:.0%} of the series (by MASE)."
                        if share is not None else "")),
            "table": {"columns": ["model", *METRICS, "coverage", "series"], "rows": rows},
        })
    if examples:
        cols = [ID, "mase", "baseline_mase", "smape", "rmse"]
        out_sections.append({
            "title": "The worst series",
            "text": ("The series with the highest MASE on the held-out horizon, with the seasonal naive's on the "
                     "same series (`baseline_mase`); RMSE in the series' own units."),
            "table": {"columns": ["series", "mase", "baseline_mase", "smape", "rmse"],
                      "rows": [[e.get(c) for c in cols] for e in examples]},
            "figure": (image(paths.figures("evaluate") / "worst_series.png")
                       if documents is None or documents.get("figures") else None),
            "figure_file": "reports/figures/evaluate/worst_series.png",
        })
    widths = trained.get("interval_widths") or []
    if widths:
        cov = m.get("coverage")
        out_sections.append({
            "title": "The intervals",
            "text": (f"Split-conformal {nominal:.0%} intervals from the chosen family's backtest errors: per step "
                     "ahead, the half-width is a quantile of |error| / scale, in units of the series' scale (the "
                     "mean absolute error of the seasonal naive within its history, MASE's denominator). A "
                     "forecast's interval is the forecast plus or minus the step's half-width times that "
                     "series' scale, so a half-width of 1 is as wide as the seasonal naive's typical error."
                     + (f" On the held-out horizon they hold {cov:.1%} of the values." if cov is not None else "")),
            "table": {"columns": ["step", "half-width (scales)"],
                      "rows": [[i + 1, float(w)] for i, w in enumerate(widths)]},
        })

    ids = ", ".join(fc.id_columns)
    data = {
        "series": (f"{feats['series']:,} ({feats.get('rows', 0):,} rows), named by {ids}"
                   if "series" in feats else f"named by {ids}"),
        "step and season": (f"{feats.get('freq', fc.freq or '-')}, a season of {feats.get('season_length', '-')} steps"),
        "times": (f"{_time(feats['first_time'])} to {_time(feats['last_time'])}" if feats.get("first_time") else "-"),
        "horizon": f"{h} steps, held out at the end of each series",
        "left out, too short": (f"{len(feats['left_out_series']):,} series shorter than {feats.get('min_length', '-')} "
                                f"steps: {named(feats['left_out_series'], MOST_NAMED)}"
                                if feats.get("left_out_series") else "none"),
        "filled steps": (f"{feats['filled_rows']:,} rows (missing steps, interpolated)"
                         if "filled_rows" in feats else "-"),
        "columns": (f"value {cfg.data.target}, time {cfg.data.time_column}; static "
                    f"{', '.join(fc.static_columns) or 'none'}, dynamic {', '.join(fc.dynamic_columns) or 'none'}"),
    }
    return {
        "family": family(chosen),
        "purpose": (f"Forecasts the next {h} steps of each series of `{cfg.data.path}` (`POST /forecast`), each "
                    f"with a {nominal:.0%} interval, from the series' stored history or a caller's own."),
        "data": data,
        "sections": out_sections,
        "limitations": limitations(evaluated, examples, feats, cfg) if m else [],
    }
