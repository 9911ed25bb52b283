"""Collect reports/benchmarks/*.json into reports/benchmarks.md and reports/benchmarks.json.

    python bench/report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT  # noqa: E402


def _overhead(r: dict) -> list[str]:
    s, d = r["stage"], r["dvc"]
    out = ["## Fixed cost of one notebook stage (a notebook that does nothing)", "",
           "| variant | runs | median s | min s | max s | peak MB | ratio to naive |", "|---|---|---|---|---|---|---|"]
    for name, v in s["variants"].items():
        out.append(f"| {name} | {v['runs']} | {v['median_seconds']} | {v['min_seconds']} | {v['max_seconds']} "
                   f"| {v['median_peak_mb']} | {v['ratio_to_naive']} |")
    out += ["", f"Target: {s['target']}: **{'met' if s['met'] else 'not met'}**.", "",
            "## DVC", "", "| measure | runs | median s | min s | max s |", "|---|---|---|---|---|"]
    for name in ("noop_repro", "dvc_status", "train_change"):
        v = d[name]
        out.append(f"| {name.replace('_', ' ')} | {v['runs']} | {v['median_seconds']} | {v['min_seconds']} | {v['max_seconds']} |")
    out += ["", f"Target: {d['noop_target']}: **{'met' if d['noop_met'] else 'not met'}**. "
            f"A `train` change re-ran {d['train_change_stages']} "
            f"({'only train, evaluate and the report index' if d['train_change_ok'] else 'MORE than train and evaluate'}).", ""]
    return out


def _pipeline(r: dict) -> list[str]:
    out = ["## Whole pipeline from a clean state against the bare script", "",
           "| scale | rows | ours median s | bare median s | time ratio | ours peak MB | bare peak MB | memory ratio |",
           "|---|---|---|---|---|---|---|---|"]
    for s in r["scales"]:
        out.append(f"| {s['scale']}x | {s['rows']:,} | {s['ours']['median_seconds']} | {s['bare']['median_seconds']} "
                   f"| {s['time_ratio']} | {s['ours']['median_peak_mb']} | {s['bare']['median_peak_mb']} | {s['memory_ratio']} |")
    out += ["", f"Target: {r['target']}: **{'met' if r['met'] else 'not met'}**.", ""]
    return out


def _team(r: dict) -> list[str]:
    lo, te = r["local_sqlite"], r["team_stack"]
    return ["## Whole pipeline against the team stack (PostgreSQL, S3, mlflow server) and the local SQLite store", "",
            "| scale | runs | team median s | local median s | time ratio |", "|---|---|---|---|---|",
            f"| {r['scale']}x | {te['runs']} | {te['median_seconds']} | {lo['median_seconds']} | {r['time_ratio']} |", "",
            f"Target: {r['target']}: **{'met' if r['met'] else 'not met'}**.", ""]


def _release(r: dict) -> list[str]:
    return [r["markdown"], ""]  # bench_release.py writes its own table (serving ratios, replayed releases)


RENDER = {"overhead": _overhead, "pipeline": _pipeline, "team": _team, "release": _release}


def main() -> Path:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines = ["# Benchmarks", "", "Written by `make bench` (`bench/`); each benchmark runs its baseline and ours in the",
             "same invocation and reports medians. Figures depend on the machine and its load.", ""]
    for r in results:
        lines += [f"<!-- {r['name']}: {r['date']} -->", f"_Machine ({r['name']}): {r['machine']}; {r['date']}._", ""]
        render = RENDER.get(r["name"])
        if render is None and "markdown" in r:
            lines += [r["markdown"], ""]
        elif render is None:
            lines += [f"## {r['name']}", "", "```json", json.dumps(r, indent=2), "```", ""]
        else:
            lines += render(r)
    md = ROOT / "reports" / "benchmarks.md"
    md.write_text("\n".join(lines) + "\n")
    (ROOT / "reports" / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    return md


if __name__ == "__main__":
    print(main())
