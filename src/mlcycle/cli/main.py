"""The `mlcycle` command: run a stage, check parameters, build the report index, list stages.

Each subcommand imports what it uses inside its function: `mlcycle run` (every DVC stage) and
`mlcycle --help` start without loading mlflow, DVC, the server or the monitor, which other
subcommands need. Those function-level imports follow the layering like any other.
"""

from __future__ import annotations

import argparse
import sys

from mlcycle.core.errors import MlcycleError


def _check(args) -> int:
    from mlcycle.cli import check
    from mlcycle.core.tables import check_data_path
    from mlcycle.core.workspace import Workspace

    ws = Workspace.open(args.params)
    params, root = ws.params, ws.root
    if not written_by_stage(params.data.path, root, params):  # else a stage (an ingest step) writes it
        check_data_path(params.data, root)
    for name, rel in params.features.enrich.tables.items():
        if not written_by_stage(rel, root, params) and not (root / rel).exists():
            raise MlcycleError(f"features.enrich.tables.{name}: '{rel}' does not exist; put the file there "
                               "(and `dvc add` it) or correct the path")
    path = root / params.data.path
    if path.is_file():  # a stage output not written yet is checked by the stage that reads it
        checked = check.header_checked(params, path, args.params)  # raises ParamsError naming every bad column
        print(f"{params.data.path}: {checked}")
    print(f"{args.params}: ok ({len(params.dump())} sections)")
    return 0


def _lock_check(args) -> int:
    """Whether dvc.lock is current for the committed code, notebooks and params (no stage runs)."""
    from mlcycle.core.paths import Paths
    from mlcycle.runtime import lockcheck

    found = lockcheck.check(Paths.at().root)
    print(lockcheck.report(found), file=sys.stderr if found else sys.stdout)
    return 1 if found else 0


def stage_outputs(root, params=None) -> set[str]:
    """Every path dvc.yaml declares as a stage output (with the ingest step's folder from params)."""
    from mlcycle.core.config import read_yaml

    stages = read_yaml(root / "dvc.yaml").get("stages", {})
    outs = {next(iter(o)) if isinstance(o, dict) else o for st in stages.values() for o in st.get("outs", [])}
    if params is not None:
        outs |= {step.outputs for step in params.ingest.values()}
    return outs


def written_by_stage(path: str, root, params) -> bool:
    """Whether a pipeline stage writes `path` (so it need not exist before `dvc repro`)."""
    from pathlib import PurePosixPath

    p = PurePosixPath(path)
    return any(p == PurePosixPath(o) or PurePosixPath(o) in p.parents for o in stage_outputs(root, params))


def _table(args) -> int:
    """The `tables` stage: check one table an enrichment hook reads and summarise it."""
    import json

    from mlcycle.core import provenance, tables
    from mlcycle.core.workspace import Workspace

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    rel = params.features.enrich.tables.get(args.name)
    if rel is None:
        raise MlcycleError(f"features.enrich.tables names no table '{args.name}'; it names "
                           f"{sorted(params.features.enrich.tables) or 'none'}")
    full = paths.root / rel
    df = tables.read_table(full, what=f"features.enrich.tables.{args.name}", shown=rel)
    out = paths.extra_table(args.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"name": args.name, "path": rel, "rows": len(df), "md5": provenance.file_md5(full),
               "columns": {str(c): str(t) for c, t in df.dtypes.items()}}
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"table {args.name}: {rel}, {len(df):,} rows, {df.shape[1]} columns")
    return 0


def _init(args) -> int:
    from mlcycle.cli import workspace
    from mlcycle.core.paths import find_root

    root = find_root()
    if args.example:
        raw = workspace.example_params(root, args.example)
        out = workspace.write_params(root, raw, args.force)
        print(f"init: wrote {out.name} for the example '{args.example}' (examples/{args.example}/); "
              "run `make repro`")
        return 0
    if not (args.data and args.target):
        raise MlcycleError("init: give --data FILE --target COLUMN (your own table) or --example NAME")
    out, schema_file, notes = workspace.init_from_data(root, args.data, args.target, args.task, args.time_column,
                                                       args.force)
    print(f"init: wrote {out.name} for {args.data}, target '{args.target}'. Inferred (check each; edit params.yaml "
          "to change it):")
    for n in notes:
        print(f"  - {n}")
    if schema_file is not None:
        print(f"  - schema: {schema_file.relative_to(root)} proposed from the data: review it (ranges, values, "
              "null limits) and commit it")
    print("next: `dvc add` the data file if it is not tracked yet, then `make repro`")
    return 0


def _run(args) -> int:
    from mlcycle.runtime.runner import run_stage

    run = run_stage(args.stage, params_file=args.params)
    if args.stage == "validate":
        from mlcycle.stages import validate

        print(validate.summary_from_file(run.root / "reports" / "validate_findings.json"))
    s = run.seconds
    print(f"{args.stage}: {run.status} in {sum(s.values()):.1f}s "
          f"(execute {s.get('execute', 0):.1f}s, render {s.get('render', 0):.1f}s) -> {run.html.relative_to(run.root)}")
    return 0


def _report(args) -> int:
    from mlcycle.core.workspace import Workspace
    from mlcycle.stages import report

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    history, runs = _report_tracking(paths, params)
    out = report.build_index(paths, params, history=history, runs=runs)
    print(f"report: {out.relative_to(paths.root)}")
    return 0


def _report_tracking(paths, params) -> tuple[dict | None, dict | None]:
    """The champion's history and the latest pipeline's runs for the index; (None, None) when tracking
    is off or its store cannot be read (the index then says so, and the stage still succeeds)."""
    if not params.tracking.enabled:
        return None, None
    from mlcycle.lifecycle import registry
    from mlcycle.runtime import tracking

    try:
        client, exp_id = tracking.setup(paths.root, params)
        history = registry.history(client, params.tracking.model_name, paths.audit_log)
        runs = tracking.latest_runs(client, exp_id) if params.tracking.ui_url else None
    except Exception as exc:  # the index is still worth writing without them
        print(f"report: the registry was not read ({type(exc).__name__}: {str(exc)[:200]}); "
              "the index shows no champion history", file=sys.stderr)
        return None, None
    return history, runs


def _stages(args) -> int:
    """Each stage of dvc.yaml (and the monitor, run by `mlcycle monitor`) with the notebook and code it
    runs for the active task, as dvc.yaml names them, and its tests: every path printed exists."""
    import yaml

    from mlcycle.core.workspace import Workspace

    ws = Workspace.open()  # the root's params.yaml (not --params)
    root, task = ws.root, ws.params.task
    shared = ("src/mlcycle/core", "src/mlcycle/runtime/runner.py", "src/mlcycle/templates")
    rows = []
    for name, stage in (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {}).items():
        body = stage.get("do", stage)
        deps = [str(d).replace("${task}", task) for d in body.get("deps", []) if isinstance(d, str)]
        notebook = next((d for d in deps if d.startswith("notebooks/")), "-")
        code = [d for d in deps if d.startswith("src/mlcycle/") and not d.startswith(shared)]
        if not code and "mlcycle table" in str(body.get("cmd", "")):
            code = ["src/mlcycle/cli/main.py (mlcycle table)"]
        rows.append((name, notebook, code))
    monitor = ws.task.monitor_module.replace(".", "/")
    rows.append(("monitor", ws.paths.notebook("monitor", task).relative_to(root).as_posix(),
                 ["src/mlcycle/monitoring/monitor.py", f"src/{monitor}.py"]))
    print(f"task {task}: every notebook stage also runs src/mlcycle/core and src/mlcycle/runtime/runner.py; "
          "monitor runs on live data (`mlcycle monitor`), not in dvc repro\n")
    print(f"{'stage':<10} {'notebook':<38} {'code':<48} tests")
    for name, notebook, code in rows:
        tests = f"tests/code/test_{name}.py" if (root / "tests" / "code" / f"test_{name}.py").exists() else "-"
        for i, c in enumerate(code or ["-"]):
            print(f"{name if i == 0 else '':<10} {notebook if i == 0 else '':<38} {c:<48} {tests if i == 0 else ''}".rstrip())
    return 0


def _registry(args):
    from mlcycle.core.workspace import Workspace
    from mlcycle.runtime import tracking

    ws = Workspace.open(args.params)
    client, _ = tracking.setup(ws.root, ws.params)
    return client, ws.model_name, ws.paths.audit_log


def _models(args) -> int:
    from mlcycle.lifecycle import registry

    client, name, _ = _registry(args)
    table = registry.versions_table(client, name)
    if table.empty:
        print(f"model '{name}' has no registered versions yet: run `make repro`")
        return 0
    print(f"model '{name}'")
    print(table.to_string(index=False))
    return 0


def _promote(args) -> int:
    from mlcycle.lifecycle import registry

    client, name, audit_file = _registry(args)
    e = registry.promote(client, audit_file, name, args.version, args.reason)
    print(f"{name}: champion {_version(e['from_version'])} -> {_version(e['to_version'])} ({e['reason']})")
    return 0


def _rollback(args) -> int:
    from mlcycle.lifecycle import registry

    client, name, audit_file = _registry(args)
    e = registry.rollback(client, audit_file, name, args.reason)
    print(f"{name}: champion rolled back {_version(e['from_version'])} -> {_version(e['to_version'])} ({e['reason']})")
    return 0


def _audit(args) -> int:
    from mlcycle.lifecycle import audit

    client, name, audit_file = _registry(args)
    entries = audit.read(audit_file, name, client)
    if getattr(args, "verify", False):
        return _verify_audit(client, name, entries)
    for e in entries:
        print(f"{e['when']}  {e['action']:<13} {_version(e['from_version'])} -> {_version(e['to_version'])}  "
              f"{e['who']}: {e['reason']}")
    return 0


def _verify_audit(client, name: str, entries: list[dict]) -> int:
    """`mlcycle audit --verify`: the chain of moves holds and ends at the current champion."""
    from mlcycle.lifecycle import audit, registry

    breaks = audit.verify_chain(entries)
    moves = [e for e in entries if e["action"] in audit.MOVES]
    champ = registry.champion(client, name)
    if moves and champ is not None and str(champ.version) != moves[-1]["to_version"]:
        breaks.append(f"the champion is v{champ.version} but the last recorded move left v{moves[-1]['to_version']}")
    if breaks:
        print(f"mlcycle: audit chain of '{name}' is broken:\n  " + "\n  ".join(breaks), file=sys.stderr)
        return 1
    print(f"{name}: audit chain verified ({len(moves)} moves, champion v{champ.version if champ else None})")
    return 0


def _team(args) -> int:
    """`mlcycle team up|down|status|migrate`: the local team stack (runtime/team.py)."""
    from mlcycle.core.paths import find_root
    from mlcycle.runtime import team

    root = find_root()
    if args.action == "up":
        state = team.up(root)
        print(team.describe(state, root))
        return 0
    if args.action == "down":
        print("team stack stopped" if team.down(root) else "team stack: nothing was running")
        return 0
    if args.action == "status":
        st = team.status(root)
        if st["state"] is None:
            print("team stack: not started (`mlcycle team up`)")
            return 1
        print(" ".join(f"{k}: {v}" for k, v in st["services"].items()) + f"; MLflow at {st['state']['mlflow']['url']}")
        return 0 if st["running"] else 1
    return _migrate(args, root)


def _migrate(args, root) -> int:
    import os

    from mlcycle.core.workspace import Workspace, local_store_uri
    from mlcycle.runtime import migrate, team, tracking

    ws = Workspace.open(args.params, root)
    params = ws.params
    target = args.to or os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.uri
    if not target:
        state = team.read_state(root)
        target = state["mlflow"]["url"] if state else None
    if not target or target.startswith("sqlite:"):
        raise MlcycleError("team migrate: name the server with --to URI (or MLFLOW_TRACKING_URI, or `mlcycle team up`)")
    tracking.check_store(target)
    source = local_store_uri(root)
    results = migrate.migrate(source, target, ws.paths.audit_log, params.tracking.experiment)
    print(migrate.describe(results))
    if not args.no_push:
        print(migrate.push_cache(root, args.remote))
    return 0


def _explain(args) -> int:
    """Contributions of the features to the score of each given row."""
    from mlcycle.core.paths import Paths
    from mlcycle.tasks.tabular import explain, features, train

    paths = Paths.at()
    spec = features.FeatureSpec.from_json(paths.feature_spec)
    if args.version:
        from mlcycle.lifecycle import registry

        client, name, _ = _registry(args)
        model, meta = registry.load_version(client, name, args.version)
        which = f"{name} v{args.version}"
    else:
        model, meta = train.load(paths.model)
        which = "models/model"
    background, _ = features.read(paths, "train", spec)
    rows = explain.prepare(explain.rows_from(args.row, args.file), background)
    for i in range(len(rows)):
        c = explain.contributions(model, rows.iloc[[i]], background, spec.task, args.background, seed=0)
        cls = c.attrs["predicted_class"]
        what = explain.score_label(spec, cls)
        print(f"row {i + 1} ({which}): {what} = {c.attrs['score']:.4f}")
        shown = c.head(args.top).assign(value=lambda d: d["value"].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v)),
                                        contribution=lambda d: d["contribution"].map(lambda v: f"{v:+.4f}"))
        print(shown.to_string(index=False))
    return 0


def _card(args) -> int:
    from mlcycle.core.paths import Paths
    from mlcycle.lifecycle import audit, card

    client, name, audit_file = _registry(args)
    version = args.version
    if version is None:
        found = client.search_model_versions(f"name = '{name}'")
        if not found:
            print(f"model '{name}' has no registered versions yet: run `make repro`")
            return 0
        version = str(max(int(m.version) for m in found))
    paths = Paths.at()
    files = card.regenerate(client, name, version, audit.read(audit_file, name, client), paths.cards)
    mv = client.get_model_version(name, version)
    print(f"model card of {name} v{version}: {files['html'].relative_to(paths.root)}, "
          f"{files['md'].relative_to(paths.root)}; in MLflow: {mv.tags.get('model_card')}")
    return 0


def _reproduce(args) -> int:
    """Rebuild a version from its lineage in a temporary worktree: 0 identical, 1 different, 2 refused."""
    from pathlib import Path

    from mlcycle.core.errors import ReproduceError, TrackingError
    from mlcycle.core.workspace import Workspace
    from mlcycle.lifecycle import reproduce
    from mlcycle.runtime import tracking

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    uri = ws.tracking_uri
    try:
        tracking.check_store(uri)
    except TrackingError as exc:
        raise ReproduceError(f"reproduce: {exc}") from None
    client = reproduce.store_client(uri)
    try:
        result = reproduce.reproduce(paths.root, client, params.tracking.model_name, args.version,
                                     allow_dirty=args.allow_dirty, strict_env=args.strict_env, keep=args.keep,
                                     say=lambda line: print(line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the rebuild's processes and worktree are gone already
        print("mlcycle: reproduce: interrupted" + ("" if args.keep else "; the temporary worktree was removed"),
              file=sys.stderr)
        return 130
    print(reproduce.summary(result))
    if args.json:
        reproduce.write_json(result, Path(args.json))
    return 0 if result["identical"] else 1


def _queue(args) -> int:
    from mlcycle.core.paths import Paths
    from mlcycle.lifecycle import experiments

    return experiments.run_queue(Paths.at().root, jobs=args.jobs)


def _serve(args) -> int:
    from mlcycle.core.workspace import Workspace
    from mlcycle.serving import server, settings

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    release = None
    if args.release or args.release_share is not None or args.candidate:
        release = params.serve.release.model_dump()
        release.update({k: v for k, v in (("mode", args.release), ("share", args.release_share),
                                          ("candidate", args.candidate)) if v is not None})
    s = settings.settings(paths.root, params, model_uri=args.model_uri, host=args.host, port=args.port,
                          workers=args.workers, reload_seconds=args.reload_seconds, log_dir=args.log_dir,
                          max_rows=args.max_rows, compiled=args.compiled, release=release)
    r = s.release
    mode = "" if r["mode"] == "off" else (f"; release {r['mode']} of @{r['candidate']}"
                                          + (f" at share {r['share']:g}" if r["mode"] == "canary" else ""))
    print(f"serving {s.model_uri} on http://{s.host}:{s.port} ({s.workers} worker(s)); "
          f"docs at /docs, prediction log in {s.log_dir}{mode}", flush=True)
    return server.run(s, log_level=args.log_level)


def _score(args) -> int:
    from pathlib import Path

    from mlcycle.core.workspace import Workspace
    from mlcycle.serving import batch

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    if args.scheduler:
        params = params.model_copy(update={"compute": params.compute.model_copy(update={"scheduler": args.scheduler})})
    if args.blocksize:
        params = params.model_copy(update={"score": params.score.model_copy(update={"blocksize": args.blocksize})})
    summary = batch.run(paths.root, params, Path(args.input).expanduser(), Path(args.output).expanduser(),
                        model_uri=args.model_uri, compiled=args.compiled, overwrite=args.overwrite,
                        progress=not args.no_progress)
    print(batch.describe(summary))
    return 0


def _schema_infer(args) -> int:
    from mlcycle.core import schema, tables
    from mlcycle.core.workspace import Workspace

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    out = paths.root / args.out if args.out else schema.schema_path(params.data, params.validate_, paths.root)
    if out.exists() and not args.force:
        print(f"mlcycle: {out.relative_to(paths.root)} exists; review and edit it, or pass --force to replace it",
              file=sys.stderr)
        return 1
    df = tables.load(params.data, paths.root)
    schema.write(schema.infer(df, params.data, params.validate_), out, len(df))
    rel = out.relative_to(paths.root) if out.is_relative_to(paths.root) else out
    print(f"schema: wrote {rel} from {len(df):,} rows of {params.data.path}; review it (ranges, values, "
          f"null limits), then `git add {rel}` and commit")
    return 0


def _add_data(args) -> int:
    from mlcycle.core.workspace import Workspace
    from mlcycle.monitoring import batches

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    result, record = batches.add(args.file, params, paths.root, name=args.name)
    print(result.summary(footer=None))
    if record is None:
        print(f"mlcycle: batch {args.file} refused: fix the errors above; nothing was stored", file=sys.stderr)
        return 1
    print(f"add-data: stored {record['file']} ({record['rows']:,} rows, md5 {record['md5'][:12]}) and recorded it "
          f"in data/batches.jsonl; commit with:\n  git add {record['file']}.dvc {record['gitignore']} "
          f"data/batches.jsonl && git commit -m 'data: add batch {record['name']}'")
    return 0


def _monitor(args) -> int:
    from mlcycle.core.paths import Paths
    from mlcycle.monitoring import monitor
    from mlcycle.runtime.runner import run_stage

    root = Paths.at().root
    if args.current:
        from pathlib import Path

        current = Path(args.current).expanduser().resolve()
        if not current.exists():
            print(f"mlcycle: --current '{args.current}' does not exist", file=sys.stderr)
            return 2
        parameters = {"current": str(current)}
    else:
        parameters = {"days": float(args.days or 0.0)}
    if args.model_uri:
        parameters["model_uri"] = args.model_uri
    run = run_stage("monitor", root, args.params, parameters=parameters)
    verdict = monitor.read_verdict(root)
    print(monitor.summary(verdict))
    print(f"monitor: report {run.html.relative_to(root)}, verdict {monitor.VERDICT}, MLflow run {verdict.get('mlflow_run_id')}")
    return 3 if args.exit_code and verdict["retrain"] else 0


def _feedback(args) -> int:
    from pathlib import Path

    from mlcycle.core import tables, tasks
    from mlcycle.core.errors import ClientError
    from mlcycle.core.workspace import Workspace
    from mlcycle.monitoring import release
    from mlcycle.serving import feedback

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    src = Path(args.file).expanduser()
    if not src.exists():
        print(f"mlcycle: feedback: file '{args.file}' does not exist", file=sys.stderr)
        return 2
    frame = tables.read_table(src)
    client, name, champ, _, log_dir = release.context(paths.root, params)
    meta = release.model_meta(name, champ)
    try:
        n = feedback.FeedbackStore(log_dir).add_file(frame, meta, f"file {src.name}")
    except ClientError as exc:
        print(f"mlcycle: feedback: {src.name}: {exc.field}: {exc.detail}; nothing was stored", file=sys.stderr)
        return 2
    what = tasks.for_objective(meta.get("task")).feedback_noun
    print(f"feedback: {n} {what} from {src.name} stored in {feedback.labels_dir(log_dir)}")
    return 0


def _release(args) -> int:
    from mlcycle.core.workspace import Workspace
    from mlcycle.monitoring import release

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    cmd = args.release_command
    if cmd == "status":
        st = release.status(paths.root, params, args.url)
        print(release.to_json(st) if args.json else release.summary(st))
        return 0
    if cmd in ("promote", "abort"):
        from mlcycle.lifecycle.registry import require_reason

        reason = require_reason(args.reason, f"release {cmd}")
        out = release.act(paths.root, params, "promote" if cmd == "promote" else "rollback", reason, url=args.url)
        print(f"release: v{out['candidate']} {'promoted to champion' if cmd == 'promote' else 'rolled back'} "
              f"(audited; MLflow run {out['mlflow_run_id']})")
        return 0
    st = release.watch(paths.root, params, args.url, args.max_checks, args.interval)
    if args.json:
        print(release.to_json(st))
    return 0


def _retrain(args) -> int:
    from mlcycle.core.workspace import Workspace
    from mlcycle.monitoring import retrain

    ws = Workspace.open(args.params)
    root, params = ws.root, ws.params
    retrain.retrain(root, params, args.batch, dry_run=args.dry_run, name=args.name, params_file=args.params)
    return 0


def _simulate(args) -> int:
    from mlcycle.core.workspace import Workspace
    from mlcycle.monitoring import simulate

    ws = Workspace.open(args.params)
    root, params = ws.root, ws.params
    res = simulate.simulate(root, params, periods=args.periods, train_periods=args.train_periods,
                            sample_frac=args.sample_frac)
    t = simulate.table(res["periods"])
    if not t.empty:
        print(t.drop(columns=["drifted"], errors="ignore").to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    s = res["summary"]
    if s:
        print(f"simulate: mean {s['metric']} {s['mean_champion']:.4f} with the loop, {s['mean_frozen']:.4f} frozen; "
              f"{s['retrainings']} retrainings, {s['promotions']} promotions in {res['seconds']:.0f}s "
              "-> reports/simulation.html")
    return 0


def parser() -> argparse.ArgumentParser:
    from mlcycle.core import tasks

    p = argparse.ArgumentParser(prog="mlcycle", description=__doc__)
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to the workspace root")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check params.yaml (types, unknown keys, missing values)").set_defaults(fn=_check)
    sub.add_parser("lock-check", help="fail when dvc.lock is stale for a code, notebook or params input "
                   "(names the stage and the file; runs nothing)").set_defaults(fn=_lock_check)
    it = sub.add_parser("init", help="write params.yaml for your own table (inferring what it can) or a shipped example")
    it.add_argument("--data", metavar="FILE", help="your CSV or Parquet file (relative to the workspace root)")
    it.add_argument("--target", metavar="COLUMN", help="the column to predict")
    it.add_argument("--task", choices=tasks.default().objectives, help="default: inferred from the target")
    it.add_argument("--time-column", metavar="COLUMN", help="default: a column that reads as dates, if any")
    it.add_argument("--example", metavar="NAME", help="a shipped example instead (examples/NAME), e.g. flights")
    it.add_argument("--force", action="store_true", help="replace an edited params.yaml and an existing schema")
    it.set_defaults(fn=_init)
    tb = sub.add_parser("table", help="(the `tables` stage) check and summarise a table features.enrich reads")
    tb.add_argument("name")
    tb.set_defaults(fn=_table)
    r = sub.add_parser("run", help="run one notebook stage through the runner (what dvc repro calls)")
    r.add_argument("stage")
    r.set_defaults(fn=_run)
    sub.add_parser("report", help="write reports/index.html linking every stage report").set_defaults(fn=_report)
    sub.add_parser("stages", help="list stages with their notebook, code and tests").set_defaults(fn=_stages)
    sub.add_parser("models", help="registered versions with aliases, gate metric, data hash, commit, date").set_defaults(fn=_models)
    pr = sub.add_parser("promote", help="make VERSION the champion (recorded in the audit log)")
    pr.add_argument("version")
    pr.add_argument("--reason", required=True)
    pr.set_defaults(fn=_promote)
    rb = sub.add_parser("rollback", help="give the champion alias back to the previous champion")
    rb.add_argument("--reason", required=True)
    rb.set_defaults(fn=_rollback)
    au = sub.add_parser("audit", help="the audit log: gate decisions, promotions, rollbacks")
    au.add_argument("--verify", action="store_true",
                    help="check the chain (each move starts where the previous one ended); non-zero exit on a break")
    au.set_defaults(fn=_audit)
    tm = sub.add_parser("team", help="the local team stack (PostgreSQL, S3 endpoint, mlflow server): up, down, "
                                     "status; migrate carries the local store and DVC cache to a server")
    tm.add_argument("action", choices=("up", "down", "status", "migrate"))
    tm.add_argument("--to", help="migrate: the tracking server's URI (default: MLFLOW_TRACKING_URI, tracking.uri, "
                                 "or the local stack's)")
    tm.add_argument("--remote", help="migrate: the DVC remote to push the cache to (default: the default remote)")
    tm.add_argument("--no-push", action="store_true", help="migrate: do not `dvc push` the cache")
    tm.set_defaults(fn=_team)
    ex = sub.add_parser("explain", help="the features' contributions to the score of single rows")
    ex.add_argument("--row", help="a JSON object (or list of objects) with the model's input columns")
    ex.add_argument("--file", help="a CSV or Parquet file of rows")
    ex.add_argument("--version", help="a registered model version (default: models/model)")
    ex.add_argument("--top", type=int, default=10, help="contributions shown per row")
    ex.add_argument("--background", type=int, default=200, help="training rows each feature is replaced by")
    ex.set_defaults(fn=_explain)
    cd = sub.add_parser("card", help="rebuild the model card of VERSION (default: the latest) from MLflow")
    cd.add_argument("version", nargs="?")
    cd.set_defaults(fn=_card)
    rp = sub.add_parser("reproduce", help="rebuild a model version from its lineage (commit, data hash) in a temporary "
                        "worktree with a private MLflow store; exit 0 identical, 1 different, 2 refused")
    rp.add_argument("version", nargs="?", help="a registered version of tracking.model_name, or the MLflow run id "
                    "of a train stage run (default: the champion)")
    rp.add_argument("--allow-dirty", action="store_true", help="rebuild a version trained from a dirty checkout "
                    "from its commit anyway (warned; differing inputs are named)")
    rp.add_argument("--strict-env", action="store_true", help="refuse when the installed packages cannot be checked "
                    "against, or differ from, the commit's requirements.lock (default: report and go on)")
    rp.add_argument("--json", metavar="FILE", help="also write the whole comparison to FILE as JSON")
    rp.add_argument("--keep", action="store_true", help="keep the temporary worktree, private store and log "
                    "(printed) to look into a difference; remove them yourself")
    rp.set_defaults(fn=_reproduce)
    q = sub.add_parser("queue", help="run the queued DVC experiments in parallel through an MLflow server it starts")
    q.add_argument("--jobs", "-j", type=int, default=2)
    q.set_defaults(fn=_queue)
    sv = sub.add_parser("serve", help="serve the champion (or --model-uri) over HTTP; flags override params.yaml serve:")
    sv.add_argument("--model-uri", help="an MLflow model URI (default: models:/<tracking.model_name>@champion)")
    sv.add_argument("--host", help="bind address (default 127.0.0.1)")
    sv.add_argument("--port", type=int)
    sv.add_argument("--workers", type=int, help="uvicorn worker processes")
    sv.add_argument("--reload-seconds", type=float, help="how often the model alias is checked")
    sv.add_argument("--log-dir", help="prediction log folder (relative to the workspace root)")
    sv.add_argument("--max-rows", type=int, help="rows per request at most")
    sv.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=None,
                    help="score through the compiled form proven equal at registration (default: serve.compiled)")
    sv.add_argument("--release", choices=["off", "canary", "shadow"],
                    help="serve the candidate beside the champion (default: serve.release.mode)")
    sv.add_argument("--release-share", type=float, help="canary: share of routing keys the candidate answers")
    sv.add_argument("--candidate", help="the candidate's alias (default: serve.release.candidate, challenger)")
    sv.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    sv.set_defaults(fn=_serve)
    so = sub.add_parser("score", help="score Parquet / CSV files of any size with the champion (or --model-uri) "
                        "on a Dask cluster; flags override params.yaml score: and compute:")
    so.add_argument("--input", required=True, help="a .parquet or .csv file, or a folder of them")
    so.add_argument("--output", required=True, help="a folder to create: Parquet parts with the prediction log's columns")
    so.add_argument("--model-uri", help="an MLflow model URI (default: models:/<tracking.model_name>@champion)")
    so.add_argument("--scheduler", help="a Dask scheduler address (default compute.scheduler; none: a local cluster)")
    so.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=None,
                    help="score through the compiled form proven equal at registration (default: score.compiled)")
    so.add_argument("--blocksize", help="input read per partition, e.g. 32MiB (default score.blocksize)")
    so.add_argument("--overwrite", action="store_true", help="replace --output once the new one is complete")
    so.add_argument("--no-progress", action="store_true", help="no progress (a bar in a terminal, plain lines in CI logs)")
    so.set_defaults(fn=_score)
    sc = sub.add_parser("schema", help="data schema: `mlcycle schema infer` proposes one from the current data")
    scs = sc.add_subparsers(dest="schema_command", required=True)
    si = scs.add_parser("infer", help="write a schema inferred from data.path for you to review and commit")
    si.add_argument("--out", help="schema file (default: validate.schema, else schemas/<data file stem>.yaml)")
    si.add_argument("--force", action="store_true", help="replace an existing schema file")
    si.set_defaults(fn=_schema_infer)
    ad = sub.add_parser("add-data", help="validate a new batch against the schema; store it under data/raw/batches with DVC")
    ad.add_argument("file")
    ad.add_argument("--name", help="file name under data/raw/batches (default: the file's own name)")
    ad.set_defaults(fn=_add_data)
    mo = sub.add_parser("monitor", help="drift and performance of the champion on new data or the prediction log")
    src = mo.add_mutually_exclusive_group(required=True)
    src.add_argument("--current", metavar="PATH", help="a data file with the columns of data.path (labels optional), "
                     "or a folder of scored rows (`mlcycle score` output, a prediction log)")
    src.add_argument("--from-log", action="store_true", help="the prediction log of `mlcycle serve`")
    mo.add_argument("--days", type=float, help="with --from-log: the last DAYS (default monitor.log_window_days)")
    mo.add_argument("--model-uri", help="the model to monitor (default: the champion)")
    mo.add_argument("--exit-code", action="store_true", help="exit 3 when the verdict calls for retraining (for schedulers)")
    mo.set_defaults(fn=_monitor)
    fb = sub.add_parser("feedback", help="store observed outcomes (columns request_id, row, label; for a recommender "
                        "request_id, item, rating) of logged predictions beside the prediction log")
    fb.add_argument("file", help="a .csv or .parquet file")
    fb.set_defaults(fn=_feedback)
    rl = sub.add_parser("release", help="the served candidate against the champion on live traffic: status, "
                        "promote, abort, watch (promotes or rolls back by params release:)")
    rl.add_argument("release_command", choices=["status", "promote", "abort", "watch"])
    rl.add_argument("--url", help="the server whose /metrics is read (default release.url, else serve.host:port)")
    rl.add_argument("--reason", help="promote / abort: why (kept in the audit log)")
    rl.add_argument("--json", action="store_true", help="status / watch: the whole evidence as JSON")
    rl.add_argument("--max-checks", type=int, help="watch: stop after this many checks without a decision")
    rl.add_argument("--interval", type=float, help="watch: seconds between checks (default release.interval_seconds)")
    rl.set_defaults(fn=_release)
    rt = sub.add_parser("retrain", help="validate and monitor a labelled batch; when the policy says so, add it and retrain")
    rt.add_argument("--batch", required=True, metavar="FILE")
    rt.add_argument("--dry-run", action="store_true", help="only report what the verdict calls for")
    rt.add_argument("--name", help="file name under data/raw/batches (default: the file's own name)")
    rt.set_defaults(fn=_retrain)
    sm = sub.add_parser("simulate", help="period-by-period replay of data.path through the loop -> reports/simulation.html")
    sm.add_argument("--periods", type=int, help="periods fed after training (default simulate.periods)")
    sm.add_argument("--train-periods", type=int, help="periods of the first training (default simulate.train_periods)")
    sm.add_argument("--sample-frac", type=float, help="share of flights used (default simulate.sample_frac)")
    sm.set_defaults(fn=_simulate)
    return p


def _version(v) -> str:
    """A version as the audit log and the commands print it: v3, or "none" (no champion before)."""
    return f"v{v}" if v not in (None, "", "None") else "none"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not sys.stderr.isatty():  # a log, not a terminal: no redrawn progress bar per downloaded file
        import os

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        return args.fn(args)
    except MlcycleError as exc:
        print(f"mlcycle: {exc}", file=sys.stderr)
        return exc.exit_code
    except FileNotFoundError as exc:
        print(f"mlcycle: {exc}", file=sys.stderr)
        return 2
