"""The `mlcycle` command, grouped by what users do (`parser`): `init`, then the groups `pipeline`,
`data`, `model`, `serving`, `release`, `monitoring` and `team`, each with its commands; the internal
commands `dvc.yaml` runs (`run`, `table`, `report`) and the spellings before the groups (deprecated,
each printing its replacement: `deprecation`) parse but are not listed. A file read is `--input
PATH` and a model is `--model REF` everywhere (`core.workspace.resolve_model_ref`).

Each subcommand imports what it uses inside its function: `mlcycle run` (every DVC stage) and
`mlcycle --help` start without loading mlflow, DVC, the server or the monitor, which other
subcommands need. Those function-level imports follow the layering like any other.
"""

from __future__ import annotations

import argparse
import re
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
    """Each stage of dvc.yaml (and the monitor, run by `mlcycle monitoring run`) with the notebook and code it
    runs for the active task, as dvc.yaml names them, and its tests: every path printed exists."""
    import yaml

    from mlcycle.core.workspace import Workspace

    ws = Workspace.open()  # the root's params.yaml (not --params)
    root, task = ws.root, ws.params.task
    shared = ("src/mlcycle/core", "src/mlcycle/runtime/runner.py", "src/mlcycle/runtime/kernel.py",
              "src/mlcycle/templates")
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
    print(f"task {task}: every notebook stage also runs src/mlcycle/core and src/mlcycle/runtime/runner.py and kernel.py; "
          "monitor runs on live data (`mlcycle monitoring run`), not in dvc repro\n")
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
    from mlcycle.core.workspace import registered_version
    from mlcycle.lifecycle import registry

    client, name, audit_file = _registry(args)
    e = registry.promote(client, audit_file, name, registered_version(client, name, args.model), args.reason)
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
    """`mlcycle model audit --verify`: the chain of moves holds and ends at the current champion."""
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
    """Contributions of the features to the score of each given row, by the model --model names (the
    champion by default; the deprecated `mlcycle explain` without --version: models/model)."""
    from mlcycle.core.paths import Paths
    from mlcycle.tasks.tabular import explain, features, train

    paths = Paths.at()
    spec = features.FeatureSpec.from_json(paths.feature_spec)
    if args.model is None and getattr(args, "local_model", False):
        model, meta = train.load(paths.model)
        which = "models/model"
    else:
        from mlcycle.core.workspace import registered_version
        from mlcycle.lifecycle import registry

        client, name, _ = _registry(args)
        version = registered_version(client, name, args.model)
        model, meta = registry.load_version(client, name, version)
        which = f"{name} v{version}"
    background, _ = features.read(paths, "train", spec)
    rows = explain.prepare(explain.rows_from(args.row, args.input), background)
    for i in range(len(rows)):
        c = explain.contributions(model, rows.iloc[[i]], background, spec.task, args.background, seed=0)
        cls = c.attrs["predicted_class"]
        what = explain.score_label(spec, cls)
        print(f"row {i + 1} ({which}): {what} = {c.attrs['score']:.4f}")
        shown = c.head(args.top).assign(value=lambda d: d["value"].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v)),
                                        contribution=lambda d: d["contribution"].map(lambda v: f"{v:+.4f}"))
        print(shown.to_string(index=False))
        words = explain.row_words(model, rows.iloc[[i]], spec, args.top)
        if len(words):  # text columns: the row's words that move its score most when deleted
            print(f"words that weigh most (change of {what} when the word is deleted):")
            print(words[["column", "word", "effect"]].assign(effect=lambda d: d["effect"].map(lambda v: f"{v:+.4f}"))
                  .to_string(index=False))
    return 0


def _card(args) -> int:
    from mlcycle.core.paths import Paths
    from mlcycle.core.workspace import registered_version
    from mlcycle.lifecycle import audit, card

    client, name, audit_file = _registry(args)
    if args.model is None and getattr(args, "latest_default", False):  # the deprecated `mlcycle card`
        found = client.search_model_versions(f"name = '{name}'")
        if not found:
            print(f"model '{name}' has no registered versions yet: run `make repro`")
            return 0
        version = str(max(int(m.version) for m in found))
    else:
        version = registered_version(client, name, args.model)
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
    ref = args.model
    if ref is not None and not RUN_ID.fullmatch(ref):  # a train run's id is passed as it is
        from mlcycle.core.workspace import registered_version

        ref = registered_version(client, params.tracking.model_name, ref)
    try:
        result = reproduce.reproduce(paths.root, client, params.tracking.model_name, ref,
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
    from mlcycle.core import tasks
    from mlcycle.core.errors import ServeError
    from mlcycle.core.workspace import Workspace
    from mlcycle.serving import release as release_routes
    from mlcycle.serving import server, settings

    ws = Workspace.open(args.params)
    paths, params = ws.paths, ws.params
    release = None
    if args.release or args.release_share is not None or args.candidate:
        release = params.serve.release.model_dump()
        release.update({k: v for k, v in (("mode", args.release), ("share", args.release_share),
                                          ("candidate", args.candidate)) if v is not None})
    s = settings.settings(paths.root, params, model_uri=ws.model_ref(args.model) if args.model else None, host=args.host, port=args.port,
                          workers=args.workers, reload_seconds=args.reload_seconds, log_dir=args.log_dir,
                          max_rows=args.max_rows, compiled=args.compiled, release=release)
    r = s.release
    refused = release_routes.refusal(r["mode"], tasks.active(params))
    if refused:
        raise ServeError(f"serving start: {refused}")
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
                        model_uri=ws.model_ref(args.model) if args.model else None, compiled=args.compiled, overwrite=args.overwrite,
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
    result, record = batches.add(args.input, params, paths.root, name=args.name)
    print(result.summary(footer=None))
    if record is None:
        print(f"mlcycle: batch {args.input} refused: fix the errors above; nothing was stored", file=sys.stderr)
        return 1
    print(f"data add: stored {record['file']} ({record['rows']:,} rows, md5 {record['md5'][:12]}) and recorded it "
          f"in data/batches.jsonl; commit with:\n  git add {record['file']}.dvc {record['gitignore']} "
          f"data/batches.jsonl && git commit -m 'data: add batch {record['name']}'")
    return 0


def _monitor(args) -> int:
    from mlcycle.core.workspace import Workspace
    from mlcycle.monitoring import monitor
    from mlcycle.runtime.runner import run_stage

    ws = Workspace.open(args.params)
    root = ws.root
    if args.input:
        from pathlib import Path

        current = Path(args.input).expanduser().resolve()
        if not current.exists():
            print(f"mlcycle: --input '{args.input}' does not exist", file=sys.stderr)
            return 2
        parameters = {"current": str(current)}
    else:
        parameters = {"days": float(args.days or 0.0)}
    if args.model:
        parameters["model_uri"] = ws.model_ref(args.model)
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
    src = Path(args.input).expanduser()
    if not src.exists():
        print(f"mlcycle: feedback: file '{args.input}' does not exist", file=sys.stderr)
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
        out = release.act(paths.root, params, "promote" if cmd == "promote" else "rollback", reason, url=args.url,
                          command=f"release {cmd}")
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
    retrain.retrain(root, params, args.input, dry_run=args.dry_run, name=args.name, params_file=args.params)
    return 0


def _simulate(args) -> int:
    from mlcycle.core.workspace import Workspace
    from mlcycle.monitoring import simulate

    ws = Workspace.open(args.params)
    root, params = ws.root, ws.params
    res = simulate.simulate(root, params, periods=args.periods, train_periods=args.train_periods,
                            sample_frac=args.sample_frac)
    t = simulate.table(res["periods"], res["replay"]["columns"])
    if not t.empty:
        print(t.drop(columns=["drifted"], errors="ignore").to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    s = res["summary"]
    if s:
        print(f"simulate: mean {s['metric']} {s['mean_champion']:.4f} with the loop, {s['mean_frozen']:.4f} frozen; "
              f"{s['retrainings']} retrainings, {s['promotions']} promotions in {res['seconds']:.0f}s "
              "-> reports/simulation.html")
    return 0


DESCRIPTION = """\
Build, register, serve and watch a model whose pipeline is a set of notebooks.
`dvc repro` (or `make repro`) runs the pipeline; these commands do the rest."""

EPILOG = """\
A model is named the same way everywhere: --model REF, a version (3, v3), an
alias (champion, @challenger) or an MLflow URI (models:/..., runs:/...); the
champion by default. A file is read with --input PATH. --params FILE goes
before or after the command. `mlcycle GROUP COMMAND --help` tells more.
Documentation: docs/index.md (`make docs` serves it)."""

PARAMS_HELP = "parameters file, relative to the workspace root (default: params.yaml)"
MODEL_HELP = ("the model: a version (3, v3), an alias (champion, @challenger) or an MLflow URI "
              "(default: the champion)")
RUN_ID = re.compile(r"[0-9a-f]{32}")  # an MLflow run id (`model reproduce` also takes a train run's)


class _Version(argparse.Action):
    """`mlcycle --version`: the installed package's version (read only when asked)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("mlcycle")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        print(f"mlcycle {found}")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """An unknown command is named with the commands the help lists (hidden and deprecated ones left
    out) and the closest of them."""

    def _check_value(self, action, value):
        if not isinstance(action, argparse._SubParsersAction) or value in action.choices:
            return super()._check_value(action, value)
        import difflib

        shown = list(listed(action))
        close = difflib.get_close_matches(value, shown, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise argparse.ArgumentError(action, f"invalid choice: '{value}' (choose from {', '.join(shown)}){hint}")


class _Listing(argparse.HelpFormatter):
    """The commands listed without a `COMMAND` line above them (so nested names fit the column)."""

    def _format_action(self, action):
        if isinstance(action, argparse._SubParsersAction):
            return "".join(self._format_action(a) for a in action._get_subactions())
        return super()._format_action(action)


class _TopListing(_Listing, argparse.RawDescriptionHelpFormatter):
    """The top-level help: the description and epilog as written."""


def _show_help(p: argparse.ArgumentParser):
    """The handler of a bare group (`mlcycle model`): its help, exit 0."""
    def show(args) -> int:
        p.print_help()
        return 0
    return show


class _Tree:
    """Adds groups, their commands and hidden commands (internal ones, deprecated spellings), each
    taking `--params` too (so it works before or after the command)."""

    def __init__(self, top: argparse.ArgumentParser):
        self.common = argparse.ArgumentParser(add_help=False)
        self.common.add_argument("--params", metavar="FILE", default=argparse.SUPPRESS, help=PARAMS_HELP)
        self.sub = top.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=_Parser)

    def _parser(self, sub, name: str, help: str | None, description: str | None):
        kw = {"help": help} if help else {}  # no help: hidden from the listing and the choices shown
        description = description or (help[0].upper() + help[1:] + ".")
        return sub.add_parser(name, description=description, parents=[self.common],
                              formatter_class=_Listing, **kw)

    def command(self, name: str, help: str, fn, description: str | None = None, sub=None):
        p = self._parser(sub or self.sub, name, help, description)
        p.set_defaults(fn=fn)
        return p

    def group(self, name: str, help: str, description: str | None = None):
        g = self._parser(self.sub, name, help, description)
        g.set_defaults(fn=_show_help(g))
        return g.add_subparsers(dest=f"{name}_command", metavar="COMMAND", title="commands", parser_class=_Parser)

    def hidden(self, name: str, fn, description: str, sub=None):
        """An internal command: parsed, not listed."""
        p = self._parser(sub or self.sub, name, None, description)
        p.set_defaults(fn=fn)
        return p

    def old(self, name: str, new: str, fn, sub=None, note: str = "", **defaults):
        """A deprecated spelling, hidden: runs `fn` after a line on stderr naming `new` (and `note`,
        what changed beside the name)."""
        p = self._parser(sub or self.sub, name.rsplit(" ", 1)[-1], None, f"Deprecated: use `{new}`{note}.")
        p.set_defaults(fn=fn, deprecated=(f"mlcycle {name}", new, note), **defaults)
        return p


def listed(sub: argparse._SubParsersAction) -> dict[str, str]:
    """{name: one-line help} of the commands `sub` lists in the help (hidden ones left out)."""
    return {a.dest: a.help for a in sub._choices_actions if a.dest in sub.choices}


def subcommands(p: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)


def _list_under_groups(sub: argparse._SubParsersAction) -> None:
    """The top-level help lists each group's commands indented under it (like `dvc --help`)."""
    rows = []
    for action in sub._choices_actions:
        rows.append(action)
        inner = subcommands(sub.choices[action.dest])
        for name, text in (listed(inner) if inner else {}).items():
            rows.append(argparse.Action([], dest=f"{action.dest} {name}", metavar=f"  {name}", help=text))
    sub._choices_actions[:] = rows


def _input(p, help: str, required: bool = True, flags=("--input",)):
    p.add_argument(*flags, dest="input", metavar="PATH", required=required, help=help)


def _model(p, flags=("--model",), required: bool = False, help: str = MODEL_HELP):
    p.add_argument(*flags, dest="model", metavar="REF", required=required, help=help)


def _reason(p, help: str = "why (kept in the audit log)", required: bool = True):
    p.add_argument("--reason", required=required, metavar="TEXT", help=help)


def parser() -> argparse.ArgumentParser:
    from mlcycle.core import tasks

    p = _Parser(prog="mlcycle", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=_TopListing)
    p.add_argument("--version", action=_Version, help="print the version and exit")
    p.add_argument("--params", metavar="FILE", default="params.yaml", help=PARAMS_HELP)
    p.set_defaults(fn=_show_help(p))
    t = _Tree(p)

    it = t.command("init", "write params.yaml for your own table (inferring what it can) or a shipped example",
                   _init)
    it.add_argument("--data", metavar="FILE", help="your CSV or Parquet file (relative to the workspace root)")
    it.add_argument("--target", metavar="COLUMN", help="the column to predict")
    it.add_argument("--task", choices=tasks.objectives(), help="default: inferred from the target")
    it.add_argument("--time-column", metavar="COLUMN", help="default: a column that reads as dates, if any")
    it.add_argument("--example", metavar="NAME", help="a shipped example instead (examples/NAME), e.g. flights")
    it.add_argument("--force", action="store_true", help="replace an edited params.yaml and an existing schema")

    # pipeline: what `dvc repro` runs, checked and listed
    g = t.group("pipeline", "the DVC pipeline `dvc repro` runs",
                "The pipeline `dvc repro` (`make repro`) runs: check params.yaml and dvc.lock before a run, "
                "list the stages with their notebook, code and tests, run queued DVC experiments.")
    check_help = "check params.yaml (types, unknown keys, missing values) and the data files it names"
    t.command("check", check_help, _check, sub=g)
    lock_help = "fail when dvc.lock is stale for a code, notebook or params input (names the stage and file; runs nothing)"
    t.command("lock-check", lock_help, _lock_check, sub=g)
    stages_help = "list the stages with the notebook, code and tests each runs for the active task"
    t.command("stages", stages_help, _stages, sub=g)
    queue_help = "run the queued DVC experiments in parallel through an MLflow server it starts"
    q = t.command("queue", queue_help, _queue, sub=g)
    q.add_argument("--jobs", "-j", type=int, default=2, help="experiments run at once (default 2)")

    # data
    g = t.group("data", "the data the pipeline reads",
                "The data the pipeline reads: propose a schema from data.path, add a new batch (checked against "
                "the schema) under data/raw/batches with DVC.")
    sc = t.command("schema", "write a schema inferred from data.path for you to review and commit", _schema_infer, sub=g)
    sc.add_argument("--out", metavar="FILE", help="schema file (default: validate.schema, else schemas/<data file stem>.yaml)")
    sc.add_argument("--force", action="store_true", help="replace an existing schema file")
    ad = t.command("add", "validate a new batch against the schema; store it under data/raw/batches with DVC",
                   _add_data, sub=g)
    _input(ad, "the batch: a .csv or .parquet file")
    ad.add_argument("--name", help="file name under data/raw/batches (default: the file's own name)")

    # model
    g = t.group("model", "the registered model versions",
                "The registered versions of tracking.model_name: list them, move the champion alias (audited), "
                "rebuild a model card, read the audit log, explain scores, rebuild a version from its lineage.")
    t.command("list", "registered versions with aliases, gate metric, data hash, commit, date", _models, sub=g)
    pr = t.command("promote", "make a version the champion (recorded in the audit log)", _promote, sub=g)
    _model(pr, required=True, help="the version to promote: 3, v3, an alias (@challenger) or models:/NAME/3")
    _reason(pr)
    rb = t.command("rollback", "give the champion alias back to the previous champion (audited)", _rollback, sub=g)
    _reason(rb)
    cd = t.command("card", "rebuild the model card of a version from MLflow (reports/cards, and in MLflow)",
                   _card, sub=g)
    _model(cd)
    au = t.command("audit", "the audit log: gate decisions, promotions, rollbacks", _audit, sub=g)
    au.add_argument("--verify", action="store_true",
                    help="check the chain (each move starts where the previous one ended); non-zero exit on a break")
    ex = t.command("explain", "the features' contributions to the score of single rows", _explain, sub=g)
    _explain_args(ex)
    _model(ex)
    rp = t.command("reproduce", "rebuild a model version from its lineage (commit, data hash) and compare",
                   _reproduce, sub=g, description="Rebuild a model version from its lineage (commit, data hash) "
                   "in a temporary worktree with a private MLflow store; exit 0 identical, 1 different, 2 refused.")
    _model(rp, help=MODEL_HELP[:-1] + "), or the MLflow run id of a train stage run")
    _reproduce_args(rp)

    # serving
    g = t.group("serving", "a model over HTTP or in batch",
                "Serve a model over HTTP (with a canary or shadow candidate), or score files of any size on a "
                "Dask cluster; flags override params.yaml serve:, score: and compute:.")
    sv = t.command("start", "serve a model over HTTP (flags override params.yaml serve:)", _serve, sub=g)
    _model(sv)
    _serve_args(sv)
    so = t.command("score", "score Parquet / CSV files of any size on a Dask cluster (flags override score:, compute:)",
                   _score, sub=g)
    _model(so)
    _score_args(so)

    # release
    g = t.group("release", "a candidate against the champion on live traffic",
                "A release: the candidate served beside the champion (canary or shadow, `mlcycle serving start "
                "--release`) compared on live traffic; promote or abort it by hand, or watch it decide by params "
                "release:.")
    url_help = "the server whose /metrics is read (default release.url, else serve.host:port)"
    for name, text in (("status", "the live comparison of the candidate and the champion"),
                       ("promote", "make the candidate the champion (audited)"),
                       ("abort", "roll the candidate back (audited); the champion stays"),
                       ("watch", "check until params release: decides, then promote or roll back")):
        r = t.command(name, text, _release, sub=g)
        r.set_defaults(release_command=name)
        r.add_argument("--url", help=url_help)
        if name in ("promote", "abort"):
            _reason(r, required=False, help="why (kept in the audit log; required)")
        else:
            r.add_argument("--json", action="store_true", help="the whole evidence as JSON")
        if name == "watch":
            r.add_argument("--max-checks", type=int, help="stop after this many checks without a decision")
            r.add_argument("--interval", type=float, help="seconds between checks (default release.interval_seconds)")

    # monitoring
    g = t.group("monitoring", "drift, feedback, retraining after release",
                "The loop after release: the champion's drift and performance on new data or the prediction log, "
                "observed outcomes, retraining on a labelled batch, a period-by-period replay.")
    mo = t.command("run", "drift and performance of a model on new data or the prediction log", _monitor, sub=g)
    _monitor_args(mo, ("--input",))
    _model(mo)
    fb = t.command("feedback", "store observed outcomes of logged predictions beside the prediction log", _feedback,
                   sub=g, description="Store observed outcomes (columns request_id, row, label; for a recommender "
                   "request_id, item, rating) of logged predictions beside the prediction log.")
    _input(fb, "the outcomes: a .csv or .parquet file")
    rt = t.command("retrain", "validate and monitor a labelled batch; when the policy says so, add it and retrain",
                   _retrain, sub=g)
    _input(rt, "the labelled batch: a .csv or .parquet file")
    _retrain_args(rt)
    sm = t.command("simulate", "period-by-period replay of data.path through the loop -> reports/simulation.html",
                   _simulate, sub=g)
    _simulate_args(sm)

    # team
    g = t.group("team", "the local team stack (PostgreSQL, S3, MLflow server)",
                "The local team stack: PostgreSQL, an S3 endpoint and an MLflow server in containers; migrate "
                "carries the local store and the DVC cache to a server.")
    for name, text in (("up", "start the stack and print where its services answer"),
                       ("down", "stop the stack"),
                       ("status", "whether each service runs (exit 1 when not)"),
                       ("migrate", "carry the local MLflow store, audit log and DVC cache to a tracking server")):
        tm = t.command(name, text, _team, sub=g)
        tm.set_defaults(action=name)
    tm.add_argument("--to", metavar="URI", help="the tracking server (default: MLFLOW_TRACKING_URI, tracking.uri, "
                    "or the local stack's)")
    tm.add_argument("--remote", help="the DVC remote to push the cache to (default: the default remote)")
    tm.add_argument("--no-push", action="store_true", help="do not `dvc push` the cache")

    # internal: what dvc.yaml runs (never renamed)
    r = t.hidden("run", _run, "Run one notebook stage through the runner (what dvc repro calls).")
    r.add_argument("stage", help="a stage of dvc.yaml")
    tb = t.hidden("table", _table, "(the `tables` stage) check and summarise a table features.enrich reads.")
    tb.add_argument("name", help="a key of features.enrich.tables")
    t.hidden("report", _report, "Write reports/index.html linking every stage report.")

    _deprecated(t)
    _list_under_groups(t.sub)
    return p


def _explain_args(p) -> None:
    p.add_argument("--row", help="a JSON object (or list of objects) with the model's input columns")
    _input(p, "a CSV or Parquet file of rows (instead of --row)", required=False)
    p.add_argument("--top", type=int, default=10, help="contributions shown per row")
    p.add_argument("--background", type=int, default=200, help="training rows each feature is replaced by")


def _reproduce_args(p) -> None:
    p.add_argument("--allow-dirty", action="store_true", help="rebuild a version trained from a dirty checkout "
                   "from its commit anyway (warned; differing inputs are named)")
    p.add_argument("--strict-env", action="store_true", help="refuse when the installed packages cannot be checked "
                   "against, or differ from, the commit's requirements.lock (default: report and go on)")
    p.add_argument("--json", metavar="FILE", help="also write the whole comparison to FILE as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary worktree, private store and log "
                   "(printed) to look into a difference; remove them yourself")


def _serve_args(p) -> None:
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default serve.port)")
    p.add_argument("--workers", type=int, help="uvicorn worker processes")
    p.add_argument("--reload-seconds", type=float, help="how often the model alias is checked")
    p.add_argument("--log-dir", help="prediction log folder (relative to the workspace root)")
    p.add_argument("--max-rows", type=int, help="rows per request at most")
    p.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=None,
                   help="score through the compiled form proven equal at registration (default: serve.compiled)")
    p.add_argument("--release", choices=["off", "canary", "shadow"],
                   help="serve the candidate beside the champion (default: serve.release.mode)")
    p.add_argument("--release-share", type=float, help="canary: share of routing keys the candidate answers")
    p.add_argument("--candidate", help="the candidate's alias (default: serve.release.candidate, challenger)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="the server's log level (default info: start, model moves and flushes; warning: only "
                        "what needs a look)")


def _score_args(p, input_flags=("--input",)) -> None:
    _input(p, "a .parquet or .csv file, or a folder of them", flags=input_flags)
    p.add_argument("--output", required=True, metavar="PATH",
                   help="a folder to create: Parquet parts with the prediction log's columns")
    p.add_argument("--scheduler", help="a Dask scheduler address (default compute.scheduler; none: a local cluster)")
    p.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=None,
                   help="score through the compiled form proven equal at registration (default: score.compiled)")
    p.add_argument("--blocksize", help="input read per partition, e.g. 32MiB (default score.blocksize)")
    p.add_argument("--overwrite", action="store_true", help="replace --output, an earlier score output only, once the new one is complete")
    p.add_argument("--no-progress", action="store_true", help="no progress (a bar in a terminal, plain lines in CI logs)")


def _monitor_args(p, input_flags) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    _input(src, "a data file with the columns of data.path (labels optional), or a folder of scored rows "
           "(`mlcycle serving score` output, a prediction log)", required=False, flags=input_flags)
    src.add_argument("--from-log", action="store_true", help="the prediction log of `mlcycle serving start`")
    p.add_argument("--days", type=float, help="with --from-log: the last DAYS (default monitor.log_window_days)")
    p.add_argument("--exit-code", action="store_true", help="exit 3 when the verdict calls for retraining (for schedulers)")


def _retrain_args(p) -> None:
    p.add_argument("--dry-run", action="store_true", help="only report what the verdict calls for")
    p.add_argument("--name", help="file name under data/raw/batches (default: the file's own name)")


def _simulate_args(p) -> None:
    p.add_argument("--periods", type=int, help="periods fed after training (default simulate.periods)")
    p.add_argument("--train-periods", type=int, help="periods of the first training (default simulate.train_periods)")
    p.add_argument("--sample-frac", type=float, help="share of rows used (default simulate.sample_frac)")


def _deprecated(t: _Tree) -> None:
    """The spellings before the groups: accepted for one more release, with a line saying the new one."""
    for old, new, fn in (("check", "pipeline check", _check), ("lock-check", "pipeline lock-check", _lock_check),
                         ("stages", "pipeline stages", _stages), ("models", "model list", _models),
                         ("rollback", "model rollback --reason TEXT", _rollback)):
        p = t.old(old, f"mlcycle {new}", fn)
        if old == "rollback":
            _reason(p)
    q = t.old("queue", "mlcycle pipeline queue", _queue)
    q.add_argument("--jobs", "-j", type=int, default=2, help="experiments run at once")
    au = t.old("audit", "mlcycle model audit", _audit)
    au.add_argument("--verify", action="store_true", help="check the chain")
    pr = t.old("promote", "mlcycle model promote --model REF", _promote)
    pr.add_argument("model", metavar="VERSION", help="the version to promote")
    _reason(pr)
    cd = t.old("card", "mlcycle model card --model REF", _card, latest_default=True,
               note=" (the champion by default; this spelling keeps the latest version)")
    cd.add_argument("model", nargs="?", metavar="VERSION", help="a registered version (default: the latest)")
    ex = t.old("explain", "mlcycle model explain --input PATH --model REF", _explain, local_model=True,
               note=" (the champion by default; this spelling keeps models/model)")
    _explain_args(ex)
    ex.add_argument("--file", dest="input", help="a CSV or Parquet file of rows")
    _model(ex, flags=("--version",), help="a registered model version (default: models/model)")
    rp = t.old("reproduce", "mlcycle model reproduce --model REF", _reproduce)
    rp.add_argument("model", nargs="?", metavar="VERSION", help="a version or a train run id (default: the champion)")
    _reproduce_args(rp)
    sv = t.old("serve", "mlcycle serving start --model REF", _serve)
    _model(sv, flags=("--model-uri",), help="an MLflow model URI (default: the champion)")
    _serve_args(sv)
    so = t.old("score", "mlcycle serving score --model REF", _score)
    _model(so, flags=("--model-uri",), help="an MLflow model URI (default: the champion)")
    _score_args(so)
    sc = t.hidden("schema", _show_help_of_old_schema, "Deprecated: use `mlcycle data schema`.")
    si = t.old("schema infer", "mlcycle data schema", _schema_infer, sub=sc.add_subparsers(dest="schema_command"))
    si.add_argument("--out", help="schema file")
    si.add_argument("--force", action="store_true", help="replace an existing schema file")
    ad = t.old("add-data", "mlcycle data add --input PATH", _add_data)
    ad.add_argument("input", metavar="FILE", help="the batch")
    ad.add_argument("--name", help="file name under data/raw/batches")
    mo = t.old("monitor", "mlcycle monitoring run --input PATH --model REF", _monitor,
               note=" (or --from-log)")
    _monitor_args(mo, ("--current",))
    _model(mo, flags=("--model-uri",), help="the model to monitor (default: the champion)")
    fb = t.old("feedback", "mlcycle monitoring feedback --input PATH", _feedback)
    fb.add_argument("input", metavar="FILE", help="a .csv or .parquet file")
    rt = t.old("retrain", "mlcycle monitoring retrain --input PATH", _retrain)
    _input(rt, "the labelled batch", flags=("--batch",))
    _retrain_args(rt)
    sm = t.old("simulate", "mlcycle monitoring simulate", _simulate)
    _simulate_args(sm)


def _show_help_of_old_schema(args) -> int:
    print("mlcycle: `mlcycle schema` is deprecated and will be removed in the next release; use `mlcycle data schema`",
          file=sys.stderr)
    return 2


def deprecation(args) -> str | None:
    """The line a deprecated spelling prints on stderr before it runs, or None."""
    old = getattr(args, "deprecated", None)
    if old is None:
        return None
    return f"mlcycle: `{old[0]}` is deprecated and will be removed in the next release; use `{old[1]}`{old[2]}"


def _version(v) -> str:
    """A version as the audit log and the commands print it: v3, or "none" (no champion before)."""
    return f"v{v}" if v not in (None, "", "None") else "none"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    line = deprecation(args)
    if line:
        print(line, file=sys.stderr)
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
    except BrokenPipeError:  # `mlcycle model list | head`: the reader has gone; no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit fails quietly
        return 141
