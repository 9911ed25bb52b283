"""Benchmark: the research loop on the flights example: a `train` value changed, then `dvc repro`
(train, evaluate, the report index). Target: evaluate within half of train's time.

On a full-size workspace copy (default params; reproduced once first, not timed, or `--workspace`
naming one already reproduced):
1. `--repeats` times: `train.l2_regularization` changed, `dvc repro`; the runner's seconds of the
   train and evaluate stages (its "<stage>: FINISHED in ...s" lines) and their ratio.
2. In the same invocation, alternating: `mlcycle run evaluate` with the code and notebook of
   `--before` (a git revision: the code before evaluate's scoring was made fast) and with this code,
   on the same trained model; their seconds, the ratio, and whether they wrote the same
   reports/metrics/evaluate.json (the figures must not change).

    python bench/bench_research_loop.py [--repeats 1] [--before REV] [--workspace PATH]

Results go to stdout and reports/benchmarks/research_loop.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import edit_params, measure, repeats, save, workspace  # noqa: E402

BEFORE = "677d9b7"  # the last revision whose evaluate scored every shuffled copy through the pipeline
NOTEBOOK = Path("notebooks/tabular/06_evaluate.ipynb")
TARGET = 0.5  # evaluate seconds / train seconds


def stage_seconds(output: str) -> dict[str, float]:
    """The runner's seconds per stage ("train: FINISHED in 41.2s ...")."""
    return {m[1]: float(m[2]) for m in re.finditer(r"^(\w+): FINISHED in ([0-9.]+)s", output, re.M)}


def code_at(rev: str, dest: Path) -> Path:
    """`src` and the evaluate notebook of git revision `rev`, unpacked at dest."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", rev, "src", str(NOTEBOOK)], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def install(code: Path, ws: Path) -> None:
    """The notebook and `src` of `code` into the workspace (a stage's kernel imports the workspace's src)."""
    shutil.copy(code / NOTEBOOK, ws / NOTEBOOK)
    shutil.rmtree(ws / "src")
    shutil.copytree(code / "src", ws / "src", ignore=shutil.ignore_patterns("__pycache__"))


def run_evaluate(ws: Path, code: Path, now: Path) -> tuple[float, str]:
    """`mlcycle run evaluate` with the notebook and `src` of `code`, then this code put back:
    (runner seconds, evaluate.json)."""
    install(code, ws)
    try:
        out = measure([sys.executable, "-m", "mlcycle", "run", "evaluate"], ws, {"PYTHONPATH": str(code / "src")})
    finally:
        install(now, ws)
    return stage_seconds(out["output"])["evaluate"], (ws / "reports/metrics/evaluate.json").read_text()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=repeats(1))
    ap.add_argument("--before", default=BEFORE, help="git revision of the code to compare evaluate with")
    ap.add_argument("--workspace", type=Path, help="a reproduced full-size workspace copy to use (changed in place)")
    args = ap.parse_args()
    here = {"PYTHONPATH": str(ROOT / "src")}  # the runner; its kernels import the workspace's src
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-loop-") as tmp:
        ws = args.workspace or workspace(Path(tmp) / "ws")
        before = code_at(args.before, Path(tmp) / "before")
        now = Path(tmp) / "now"
        (now / NOTEBOOK).parent.mkdir(parents=True)
        shutil.copy(ROOT / NOTEBOOK, now / NOTEBOOK)
        (now / "src").symlink_to(ROOT / "src")
        install(now, ws)  # (a copy made by `workspace` has it already)
        measure(["dvc", "repro"], ws, here)  # the starting point, not timed: everything up to date
        loops, old, new, same = [], [], [], []
        for i in range(args.repeats):
            edit_params(ws, {"train": {"l2_regularization": round(1.0 + 0.1 * (i + 1), 2)}})
            s = stage_seconds(measure(["dvc", "repro"], ws, here)["output"])
            loops.append({"train": s.get("train"), "evaluate": s.get("evaluate"), "ran": sorted(s)})
            b_s, b_json = run_evaluate(ws, before, now)
            n_s, n_json = run_evaluate(ws, now, now)
            old.append(b_s)
            new.append(n_s)
            same.append(b_json == n_json)
        train_s = statistics.median(x["train"] for x in loops)
        eval_s = statistics.median(x["evaluate"] for x in loops)
    result = {
        "loops": loops, "train_seconds": train_s, "evaluate_seconds": eval_s,
        "evaluate_to_train": round(eval_s / train_s, 3), "target": f"evaluate <= {TARGET} x train",
        "met": eval_s <= TARGET * train_s,
        "before": args.before, "evaluate_before_seconds": old, "evaluate_now_seconds": new,
        "evaluate_now_to_before": round(statistics.median(new) / statistics.median(old), 3),
        "same_evaluate_json": all(same),
    }
    print(json.dumps(result, indent=2))
    print(save("research_loop", result))


if __name__ == "__main__":
    main()
