"""Where everything lives. Every stage's inputs and outputs are named here once.

dvc.yaml declares the same paths as deps and outs; tests/code/test_conventions.py checks that
the two agree. Nothing here touches the disk at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_MARKERS = ("params.yaml", "dvc.yaml")

# stage name -> notebook file: notebooks/<task>/<file>, each task's own (notebooks/<file> for the
# shared ones, SHARED_NOTEBOOKS); the report stage has no notebook
NOTEBOOKS: dict[str, str] = {
    "ingest": "01_ingest.ipynb",
    "validate": "02_validate.ipynb",
    "eda": "03_eda.ipynb",
    "features": "04_features.ipynb",
    "train": "05_train.ipynb",
    "evaluate": "06_evaluate.ipynb",
}
STAGES: tuple[str, ...] = (*NOTEBOOKS, "report")
# notebook stages outside dvc.yaml: run on live data by a command (`mlcycle monitoring run`), not by `dvc repro`
OPERATIONS: dict[str, str] = {"monitor": "07_monitor.ipynb"}
NOTEBOOK_FILES: dict[str, str] = {**NOTEBOOKS, **OPERATIONS}
# stages whose notebook every task shares (notebooks/<file>): ingest runs a hook, whatever the task
SHARED_NOTEBOOKS: tuple[str, ...] = ("ingest",)
# the params sections each notebook stage reads (those dvc.yaml lists for it): tracking logs them on its run
PARAMS_SECTIONS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest",), "validate": ("data", "validate"), "eda": ("data", "eda"),
    "features": ("data", "features", "split"), "train": ("train",), "evaluate": ("evaluate", "gate"),
    "monitor": ("monitor", "retrain"),
}
# what the pipeline writes that records this machine's registry and tracking store (a version number,
# run ids and links, the local champion, the promotion history, the git state): not DVC outputs and
# ignored by git, so `dvc.lock` and every committed result follow from code, data and params alone
# (docs/reproducibility.md); each is also kept with its MLflow run
MACHINE_LOCAL: tuple[str, ...] = ("models/registered.json", "reports/gate_decision.json", "reports/metrics/gate.json",
                                  "reports/evaluate.html", "reports/executed/evaluate.ipynb", "reports/model_card.json",
                                  "reports/model_card.html", "reports/model_card.md", "reports/index.html")
# what a fresh copy of the workspace needs to run the pipeline, as a clone has it (tests and benchmarks
# copy these): the pipeline definition, notebooks, code and schemas; data comes from ingest
WORKSPACE_FILES: tuple[str, ...] = ("params.yaml", "dvc.yaml", "requirements.lock", "notebooks", "src", "schemas", "examples", "hooks",
                                    ".dvc/config", ".dvcignore", ".gitignore", "data/raw/.gitkeep",
                                    "data/interim/tables/.gitkeep", "data/batches.jsonl", "intended_use.md")


def notebook_path(root: Path, stage: str, task: str) -> Path:
    if stage in SHARED_NOTEBOOKS:
        return Path(root) / "notebooks" / NOTEBOOK_FILES[stage]
    return Path(root) / "notebooks" / task / NOTEBOOK_FILES[stage]


def copy_workspace(root: Path, dest: Path) -> Path:
    """Copy WORKSPACE_FILES from the workspace at `root` to `dest` (tests and benchmarks start from one)."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for item in WORKSPACE_FILES:
        src = root / item
        if not src.exists():
            continue
        target = dest / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints"))
        else:
            shutil.copy2(src, target)
    return dest


def main_root(root: Path) -> Path:
    """The workspace that owns `root`: itself, or the one whose .dvc/tmp/exps holds it (a `dvc exp`
    copy records into its workspace's store)."""
    parts = root.resolve().parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return root.resolve()


def store_dir(root: Path) -> Path:
    """The local tracking store (MLflow's database and artifacts) of the workspace that owns `root`."""
    return main_root(root) / "mlruns"


def find_root(start: str | Path | None = None) -> Path:
    """The workspace root: $MLCYCLE_ROOT, else the nearest folder upwards holding params.yaml and dvc.yaml."""
    env = os.environ.get("MLCYCLE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / m).exists() for m in ROOT_MARKERS):
            return folder
    raise FileNotFoundError(
        f"no mlcycle workspace found at or above {here}: expected params.yaml and dvc.yaml; "
        "run from inside the workspace or set MLCYCLE_ROOT"
    )


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def at(cls, root: str | Path | None = None) -> Paths:
        return cls(Path(root).resolve() if root else find_root())

    @property
    def store(self) -> Path:
        """The local tracking store: MLflow's database and artifacts (shared by `dvc exp` copies)."""
        return store_dir(self.root)

    @property
    def audit_log(self) -> Path:
        """Every gate decision, promotion and rollback, one JSON line each (lifecycle/audit.py)."""
        return self.store / "audit.jsonl"

    # inputs
    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    def notebook(self, stage: str, task: str) -> Path:
        """The notebook `stage` runs for `task` (params `task`)."""
        return notebook_path(self.root, stage, task)

    @property
    def batches_manifest(self) -> Path:
        """The batches `mlcycle data add` recorded (one JSON line each)."""
        return self.root / "data" / "batches.jsonl"

    @property
    def extra_tables(self) -> Path:
        """Summaries of the other tables an enrichment hook reads (the `tables` stage)."""
        return self.root / "data" / "interim" / "tables"

    def extra_table(self, name: str) -> Path:
        return self.extra_tables / f"{name}.json"

    # stage outputs
    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed"

    def split_file(self, part: str) -> Path:
        """part: train | valid | test"""
        return self.processed / f"{part}.parquet"

    @property
    def feature_spec(self) -> Path:
        return self.processed / "features.json"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def model(self) -> Path:
        return self.models / "model"

    @property
    def baseline(self) -> Path:
        return self.models / "baseline"

    @property
    def search(self) -> Path:
        return self.models / "search.json"

    @property
    def registered(self) -> Path:
        """The model version the train stage registered (name, version, run id)."""
        return self.models / "registered.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def report_html(self, stage: str) -> Path:
        return self.reports / f"{stage}.html"

    def executed_notebook(self, stage: str) -> Path:
        return self.reports / "executed" / f"{stage}.ipynb"

    def metrics(self, stage: str) -> Path:
        return self.reports / "metrics" / f"{stage}.json"

    def stage_log(self, stage: str) -> Path:
        """What libraries said while the stage's notebook ran (warnings, log records): kept out of its
        report (runtime/kernel.py); rewritten by each run, not a pipeline output."""
        return self.reports / "logs" / f"{stage}.log"

    def figures(self, stage: str) -> Path:
        return self.reports / "figures" / stage

    @property
    def findings(self) -> Path:
        return self.reports / "validate_findings.json"

    @property
    def gate_decision(self) -> Path:
        return self.reports / "gate_decision.json"

    @property
    def fairness(self) -> Path:
        """Per-group metrics and gaps of the slice and sensitive columns (evaluate)."""
        return self.reports / "fairness.json"

    @property
    def explanations(self) -> Path:
        """Permutation importance and partial dependence (evaluate)."""
        return self.reports / "explanations.json"

    def model_card(self, kind: str = "html") -> Path:
        """The card of the version evaluate judged: kind html | md | json."""
        return self.reports / f"model_card.{kind}"

    @property
    def cards(self) -> Path:
        """Cards regenerated by `mlcycle model card --model VERSION` (v<version>.html ...)."""
        return self.reports / "cards"

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    @property
    def index(self) -> Path:
        return self.reports / "index.html"
