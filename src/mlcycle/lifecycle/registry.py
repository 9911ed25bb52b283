"""The model registry: register the trained model, move the `champion` alias, under the audit log.

Every gate decision, promotion and rollback is recorded by `lifecycle/audit.py`. Each holds the
audit log's exclusive lock while it reads the champion, moves the alias and appends its entry, so
concurrent processes are serialised and the audit chain holds.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from mlcycle.core import provenance, record
from mlcycle.core.errors import RegistryError
from mlcycle.core.workspace import CHALLENGER, CHAMPION, load_model, model_uri
from mlcycle.lifecycle import audit


def require_reason(reason: str | None, what: str) -> str:
    if reason is None or not str(reason).strip():
        raise RegistryError(f"{what}: --reason is empty; say why (it is kept in the audit log)")
    return str(reason).strip()


def register(client, name: str, run_id: str, model_dir: Path, tags: dict[str, str]) -> str:
    """Log `model_dir` (an MLflow model folder) to the run as `model` and register it; returns the version."""
    client.log_artifacts(run_id, str(model_dir), "model")
    try:
        client.get_registered_model(name)
    except Exception:
        try:
            client.create_registered_model(name)
        except Exception:  # created meanwhile by a parallel run
            pass
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    mv = client.create_model_version(name, source=source, run_id=run_id, tags=tags)
    return str(mv.version)


def champion(client, name: str):
    """The model version with the `champion` alias, or None."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except Exception:
        return None


def set_alias(client, name: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(name, alias, str(version))


def promote(client, audit_file: Path, name: str, version: str, reason: str, action: str = "promote",
            evidence: dict | None = None) -> dict:
    """Give `version` the champion alias (the old champion keeps its other aliases), under the
    registry lock, with `evidence` (a release's live comparison) in the audit entry. Promoting the
    current champion is an error (nothing moves, nothing is recorded)."""
    reason = require_reason(reason, f"promote v{version}")
    with audit.locked(audit_file, client):
        return promote_locked(client, audit_file, name, version, reason, action, evidence)


def promote_locked(client, audit_file: Path, name: str, version: str, reason: str, action: str = "promote",
                   evidence: dict | None = None) -> dict:
    """`promote` for a caller that already holds `audit.locked(audit_file, client)` (a release
    decision, which checks its own preconditions under the same lock)."""
    try:
        client.get_model_version(name, str(version))
    except Exception:
        raise RegistryError(f"model '{name}' has no version {version}; see `mlcycle model list`") from None
    old = champion(client, name)
    if old is not None and str(old.version) == str(version):
        raise RegistryError(f"model '{name}': v{version} already is the champion; nothing was changed")
    set_alias(client, name, CHAMPION, version)
    return audit.append(audit_file, client, name, action, old.version if old else None, version, reason, evidence)


def rollback(client, audit_file: Path, name: str, reason: str) -> dict:
    """Give the champion alias back to the version that held it before the current champion, under
    the registry lock; an error when no earlier, different champion is recorded."""
    reason = require_reason(reason, "rollback")
    with audit.locked(audit_file, client):
        current = champion(client, name)
        if current is None:
            raise RegistryError(f"model '{name}' has no champion to roll back")
        moves = [e for e in audit.read(audit_file, name, client)
                 if e["to_version"] == str(current.version) and e["from_version"] and e["action"] in audit.MOVES
                 and e["from_version"] != e["to_version"]]
        if not moves:
            raise RegistryError(f"model '{name}': no earlier champion is recorded before v{current.version}; "
                                "nothing to roll back to (see `mlcycle model audit`); promote a version instead")
        previous = moves[-1]["from_version"]
        set_alias(client, name, CHAMPION, previous)
        return audit.append(audit_file, client, name, "rollback", current.version, previous, reason)


GATE_PASSED = "promoted"  # the `gate.decision` tag of a version the gate passed (gate.Decision.outcome)


def candidate_refusal(client, name: str, version: str) -> str | None:
    """Why version `version` cannot be a release candidate, or None when it can: only a version the
    gate passed (`gate.decision` = promoted) is one; a rejected or never judged version is not."""
    try:
        tags = client.get_model_version(name, str(version)).tags or {}
    except Exception:
        return f"model '{name}' has no version {version}"
    decision = tags.get("gate.decision", "")
    if decision == GATE_PASSED:
        return None
    why = (f"the gate {decision} it" + (f" ({tags['gate.summary'][:200]})" if tags.get("gate.summary") else "")
           if decision else "the gate never judged it (no gate.decision tag)")
    return (f"v{version} cannot be a release candidate: {why}; only a version that passed the gate is released "
            f"beside the champion. Point the candidate alias at one that did, or decide by hand with "
            f"`mlcycle model promote --model {version} --reason \"...\"` (audited)")


def versions(client, name: str, aliases: bool = True) -> list:
    """The registered versions of `name`, oldest first; with `aliases`, each read again for its
    aliases (a search's results carry none). [] when nothing is registered under the name. A store
    that cannot be read raises: an unreachable server is not an empty registry."""
    found = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda m: int(m.version))
    return [client.get_model_version(name, mv.version) for mv in found] if aliases else found


def gate_tags(mv) -> dict:
    """What the gate recorded on a version: {metric, value (float or None), decision}."""
    t = mv.tags or {}
    try:
        value = float(t["gate.value"]) if t.get("gate.value") else None
    except ValueError:
        value = None
    return {"metric": t.get("gate.metric", ""), "value": value, "decision": t.get("gate.decision", "")}


def versions_table(client, name: str):
    """One row per version: aliases, the gate's decision and metric, data hash, git commit, date."""
    import pandas as pd

    rows = []
    for mv in versions(client, name):
        t, gate = mv.tags or {}, gate_tags(mv)
        rows.append({
            "version": int(mv.version), "aliases": ",".join(mv.aliases or []),
            "gate": gate["decision"], "metric": gate["metric"], "value": t.get("gate.value", ""),
            "data_md5": t.get("data_md5", "")[:12], "git_commit": t.get("git_commit", "")[:10],
            "created": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M"),
        })
    return pd.DataFrame(rows)


def history(client, name: str, audit_file: Path) -> dict:
    """The champion's history for the report index: every version with its gate metric and
    decision (its `gate.*` tags), the moves of the champion alias from the audit log (promotions,
    gate promotions, rollbacks), and the current champion. Empty lists when nothing is registered."""
    found = versions(client, name, aliases=False)  # the champion alias is read once, below
    listed = [{"version": str(mv.version), **gate_tags(mv), "run_id": mv.run_id or ""} for mv in found]
    moves = [{"action": e["action"], "from_version": e.get("from_version"), "to_version": e.get("to_version"),
              "when": e.get("when", ""), "reason": e.get("reason", "")}
             for e in audit.read(audit_file, name, client) if e.get("action") in audit.MOVES]
    champ = champion(client, name) if found else None
    return {"model": name, "versions": listed, "moves": moves, "champion": str(champ.version) if champ else None}


def load_version(client, name: str, version: str):
    """The model and mlcycle metadata of a registered version: its task's `load` hook (a recommender:
    the pyfunc's Python model), else the scikit-learn pipeline (`core.workspace.load_model`)."""
    return load_model(model_uri(name, version=version))


NO_CHAMPION = "no champion to compare against: judged on the minimums (and the baseline) alone"


def rescore_champion(client, name: str, candidate_version: str | None, score):
    """(version, metrics, note) of the current champion re-scored by `score(model, meta)` on the
    current holdout; (None, None, note) when there is none or it cannot score the current data."""
    champ = champion(client, name)
    if champ is None:
        return None, None, NO_CHAMPION
    if candidate_version is not None and str(champ.version) == str(candidate_version):
        return None, None, "the candidate already is the champion"
    try:
        model, meta = load_version(client, name, champ.version)
        return str(champ.version), score(model, meta), f"champion v{champ.version} re-scored on the current holdout"
    except Exception as exc:
        return None, None, (f"champion v{champ.version} cannot score the current holdout "
                            f"({type(exc).__name__}: {str(exc)[:200]}); judged without a champion criterion")


@audit.under_lock
def apply_decision(client, audit_file: Path, name: str, decision) -> dict:
    """Move aliases as the gate decided, tag the version with the decision, audit it. A passed
    version becomes the champion; a rejected one gets no alias (the `challenger` alias is the
    default release candidate, and only a version the gate passed may be one: `candidate_refusal`),
    and when the challenger alias named it (a version judged again) the alias is removed."""
    version = decision.candidate_version
    old = champion(client, name)
    if decision.promote:
        set_alias(client, name, CHAMPION, version)
    else:
        try:
            if str(client.get_model_version_by_alias(name, CHALLENGER).version) == str(version):
                client.delete_registered_model_alias(name, CHALLENGER)
        except Exception:  # no challenger alias
            pass
    value = getattr(decision, "value", None)  # the candidate's gate-metric value, whatever the criteria
    if value is None:
        value = next((c["value"] for c in decision.criteria if c["criterion"].startswith(decision.metric)), None)
    for k, v in {"gate.decision": decision.outcome, "gate.metric": decision.metric,
                 "gate.value": "" if value is None else f"{value:.6f}",
                 "gate.criteria": json.dumps(decision.criteria, default=str)[:5000],
                 "gate.summary": decision.summary()}.items():
        client.set_model_version_tag(name, version, k, v)
    action = "gate-promote" if decision.promote else "gate-reject"
    return audit.append(audit_file, client, name, action, old.version if old else None,
                 version if decision.promote else (old.version if old else None),
                 decision.summary(), {"criteria": decision.criteria})


def unresolved_message(client, name: str, uri: str, command: str = "serving start") -> str | None:
    """Why `models:/<name>@champion` does not resolve when versions exist, and the ways forward:
    the newest version's gate decision (its `gate.decision` / `gate.summary` tags), then
    `mlcycle model promote`, `mlcycle <command> --model N` or a new run. None when there is no version
    (then "run `make repro`" is the right advice)."""
    try:
        found = client.search_model_versions(f"name = '{name}'")
    except Exception:
        return None
    if not found:
        return None
    newest = max(found, key=lambda m: int(m.version))
    try:
        newest = client.get_model_version(name, newest.version)
    except Exception:
        pass
    tags = newest.tags or {}
    v = str(newest.version)
    decision = tags.get("gate.decision")
    summary = str(tags.get("gate.summary", ""))
    summary = summary if len(summary) <= 300 else summary[:285] + " ..."
    if decision:
        why = f"the gate {decision} version {v}" + (f": {summary}" if summary else "")
    else:
        why = f"version {v} has no gate decision (the evaluate stage did not judge it)"
    count = f"{len(found)} version(s) registered, none is the champion" if len(found) > 1 else "1 version registered, not the champion"
    return (f"{command}: {uri} does not resolve: {count}; {why}. Ways forward: "
            f"`mlcycle model promote --model {v} --reason \"...\"` makes it the champion (audited); "
            f"`mlcycle {command} --model {v}` uses it without promoting; "
            "or change the data or params.yaml and run `make repro` for a model that passes the gate")


# ---------------------------------------------------------------- this machine's registration of the trained model

def write_registration(path: Path, name: str, model_dir: Path | None = None, data: str = "data/processed",
                       verdict=None) -> None:
    """models/registered.json before tracking registers the model: the name, no version yet. Under
    the runner, tracking registers the model saved at `model_dir` (default: `model` next to `path`)
    with the DVC hash of its training data `data` and the compiled form's verdict as version tags
    (`mlcycle.scoring_path`: compiled | sklearn, and why: `verdict.tags()`), and fills in the version."""
    model_dir = model_dir or path.parent / "model"
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = provenance.folder_digest(model_dir)
    path.write_text(json.dumps({"name": name, "version": None, "run_id": None, "model_digest": digest}, indent=2) + "\n")
    tags = {**(verdict.tags() if verdict else {}), "model_digest": digest}
    record.register(name, model_dir, path, data, tags=tags)


UNREGISTERED = {"name": None, "version": None, "run_id": None}


def read_registration(path: Path, model_dir: Path | None = None) -> dict:
    """The registration of the model train saved (`models/registered.json`: written by this machine's
    tracking, not a DVC output). With `model_dir`, only when it is that model: after DVC restored
    `models/model` from its cache (a checkout, the run cache) the file may name another version, and
    then the result says so under `stale` instead of naming a version."""
    if not path.exists():
        return dict(UNREGISTERED)
    doc = json.loads(path.read_text())
    if model_dir is not None and doc.get("model_digest") and Path(model_dir).exists():
        if provenance.folder_digest(model_dir) != doc["model_digest"]:
            return {**UNREGISTERED, "name": doc.get("name"),
                    "stale": f"{Path(model_dir).name} is not the model registered as version {doc.get('version')} "
                             "(DVC restored another one from its cache); run `dvc repro -f train` to train and "
                             "register it"}
    return doc
