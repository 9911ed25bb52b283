"""The `mlcycle` command line: every group and command prints its help with a description, every
command and argument has a one-line help, a bare `mlcycle` or group prints help (exit 0),
`--version` works, internal commands are hidden, `--params` goes before or after the command, each
deprecated spelling runs the new handler after a line naming its replacement, and `--model REF`
resolves the same way everywhere."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from mlcycle.cli.main import deprecation, listed, main, parser, subcommands
from mlcycle.core.errors import MlcycleError
from mlcycle.core.workspace import registered_version, resolve_model_ref
from tests.conftest import ROOT, env

HIDDEN = ("run", "table", "report")


def tree() -> list[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """(path, parser, one-line help) of every listed group and command, groups before their commands."""
    out = []

    def walk(p, path):
        sub = subcommands(p)
        if sub is None:
            return
        helps = listed(sub)
        for name, child in sub.choices.items():
            if name in helps:
                out.append(((*path, name), child, helps[name]))
                walk(child, (*path, name))

    walk(parser(), ())
    return out


def test_the_tree_has_the_groups_and_their_commands():
    paths = {path for path, _, _ in tree()}
    assert {("init",), ("pipeline", "check"), ("pipeline", "lock-check"), ("pipeline", "stages"), ("pipeline", "queue"),
            ("data", "schema"), ("data", "add"), ("model", "list"), ("model", "promote"), ("model", "rollback"),
            ("model", "card"), ("model", "audit"), ("model", "explain"), ("model", "reproduce"),
            ("serving", "start"), ("serving", "score"), ("release", "status"), ("release", "promote"),
            ("release", "abort"), ("release", "watch"), ("monitoring", "run"), ("monitoring", "feedback"),
            ("monitoring", "retrain"), ("monitoring", "simulate"), ("team", "up"), ("team", "down"),
            ("team", "status"), ("team", "migrate")} <= paths
    top = {path[0] for path in paths}
    assert top == {"init", "pipeline", "data", "model", "serving", "release", "monitoring", "team"}


@pytest.mark.parametrize("path", [p for p, _, _ in tree()], ids=" ".join)
def test_every_group_and_command_prints_its_help(path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    description = dict((q, p) for q, p, _ in tree())[path].description
    assert out.startswith(f"usage: mlcycle {' '.join(path)}") and description
    assert " ".join(description.split()) in " ".join(out.split())  # the description, as wrapped


def test_every_command_and_argument_has_a_one_line_help():
    missing = []
    for path, p, text in tree():
        if not (text and text.strip() and "\n" not in text):
            missing.append(f"{' '.join(path)}: no one-line help")
        if not (p.description and p.description.strip()):
            missing.append(f"{' '.join(path)}: no description")
        for a in p._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (a.help and a.help.strip()):
                missing.append(f"{' '.join(path)}: {a.option_strings or a.dest} has no help")
    assert missing == []


def test_the_top_level_help_lists_groups_with_their_commands_and_hides_internal_ones(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "  model " in out and "    promote " in out and "--model REF" in out  # commands under their group
    words = {line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")}
    for name in (*HIDDEN, "serve", "monitor", "promote-", "add-data", "models"):
        assert name not in words
    assert "{" not in lines[0] and "COMMAND" in lines[0]  # no list of choices in the usage
    assert max(len(line) for line in lines) <= 100


@pytest.mark.parametrize("group", ["pipeline", "data", "model", "serving", "release", "monitoring", "team"])
def test_a_bare_group_prints_its_help(group, capsys):
    assert main([group]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mlcycle {group}") and "commands:" in out


def test_bare_mlcycle_prints_help_and_version_prints_the_version():
    bare = subprocess.run([sys.executable, "-m", "mlcycle"], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=120)
    assert bare.returncode == 0 and bare.stdout.startswith("usage: mlcycle") and "monitoring" in bare.stdout
    version = subprocess.run([sys.executable, "-m", "mlcycle", "--version"], cwd=ROOT, env=env(), capture_output=True,
                             text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("mlcycle ") and len(version.stdout.split()) == 2


def test_output_piped_into_a_reader_that_stops_early_ends_without_a_traceback():
    """`mlcycle pipeline stages | head -0`: the reader has closed the pipe before the command writes;
    exit 141 (as a shell reports SIGPIPE), no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "mlcycle", "pipeline", "stages"], cwd=ROOT, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # closed at once: the command's first write meets a pipe without a reader
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err, err


def test_hidden_internal_commands_still_parse():
    p = parser()
    assert p.parse_args(["run", "train"]).stage == "train"
    assert p.parse_args(["table", "weather"]).name == "weather"
    assert p.parse_args(["report"]).fn.__name__ == "_report"


@pytest.mark.parametrize("argv, listed_names, hint", [
    (["modle"], "init, pipeline, data, model, serving, release, monitoring, team", "did you mean 'model'?"),
    (["model", "lst"], "list, promote, rollback, card, audit, explain, reproduce", "did you mean 'list'?"),
    (["banana"], "init, pipeline, data, model, serving, release, monitoring, team", None),
])
def test_an_unknown_command_lists_only_what_the_help_lists(argv, listed_names, hint, capsys):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"(choose from {listed_names})" in err, err
    assert "add-data" not in err and "'run'" not in err and "models" not in err  # hidden and deprecated names
    assert (hint in err) if hint else "did you mean" not in err


@pytest.mark.parametrize("argv", [["--params", "other.yaml", "pipeline", "check"],
                                  ["pipeline", "--params", "other.yaml", "check"],
                                  ["pipeline", "check", "--params", "other.yaml"]])
def test_params_goes_before_or_after_the_command(argv):
    assert parser().parse_args(argv).params == "other.yaml"
    assert parser().parse_args(["pipeline", "check"]).params == "params.yaml"


def test_params_after_the_command_is_the_file_read(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("MLCYCLE_ROOT", raising=False)
    assert main(["pipeline", "check", "--params", "missing.yaml"]) == 2
    assert "missing.yaml" in capsys.readouterr().err


# old argv -> the new argv it stands for (same handler, same values)
DEPRECATED = {
    ("check",): ("pipeline", "check"),
    ("lock-check",): ("pipeline", "lock-check"),
    ("stages",): ("pipeline", "stages"),
    ("queue", "--jobs", "3"): ("pipeline", "queue", "--jobs", "3"),
    ("schema", "infer", "--force"): ("data", "schema", "--force"),
    ("add-data", "b.csv", "--name", "x.csv"): ("data", "add", "--input", "b.csv", "--name", "x.csv"),
    ("models",): ("model", "list"),
    ("promote", "3", "--reason", "r"): ("model", "promote", "--model", "3", "--reason", "r"),
    ("rollback", "--reason", "r"): ("model", "rollback", "--reason", "r"),
    ("audit", "--verify"): ("model", "audit", "--verify"),
    ("card", "2"): ("model", "card", "--model", "2"),
    ("explain", "--file", "rows.csv", "--version", "2"): ("model", "explain", "--input", "rows.csv", "--model", "2"),
    ("reproduce", "2", "--keep"): ("model", "reproduce", "--model", "2", "--keep"),
    ("serve", "--model-uri", "models:/m/2", "--port", "9"): ("serving", "start", "--model", "models:/m/2", "--port", "9"),
    ("score", "--input", "a", "--output", "b", "--model-uri", "runs:/r/m"):
        ("serving", "score", "--input", "a", "--output", "b", "--model", "runs:/r/m"),
    ("monitor", "--current", "new.csv", "--model-uri", "models:/m@challenger"):
        ("monitoring", "run", "--input", "new.csv", "--model", "models:/m@challenger"),
    ("monitor", "--from-log", "--days", "2"): ("monitoring", "run", "--from-log", "--days", "2"),
    ("feedback", "labels.csv"): ("monitoring", "feedback", "--input", "labels.csv"),
    ("retrain", "--batch", "b.csv", "--dry-run"): ("monitoring", "retrain", "--input", "b.csv", "--dry-run"),
    ("simulate", "--periods", "2"): ("monitoring", "simulate", "--periods", "2"),
}
BESIDE = {"deprecated", "local_model", "latest_default", "command", "schema_command"}  # what only says how it was spelt


@pytest.mark.parametrize("old", list(DEPRECATED), ids=" ".join)
def test_a_deprecated_spelling_runs_the_new_handler_after_a_line_naming_it(old):
    new = DEPRECATED[old]
    was, now = parser().parse_args(list(old)), parser().parse_args(list(new))
    assert was.fn is now.fn
    same = {k: v for k, v in vars(now).items() if k not in BESIDE and not k.endswith("_command")}
    assert {k: getattr(was, k, None) for k in same} == same
    line = deprecation(was)
    name = " ".join(old[:2]) if old[0] == "schema" else old[0]
    assert line.startswith(f"mlcycle: `mlcycle {name}` is deprecated and will be removed in the next release; use "
                           f"`mlcycle {new[0]} {new[1]}")
    assert deprecation(now) is None
    assert not set(old[:1]) & set(listed(subcommands(parser())))  # hidden from the listing


def test_the_deprecation_line_goes_to_stderr_before_the_command_runs(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("MLCYCLE_ROOT", raising=False)
    assert main(["check", "--params", "missing.yaml"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("mlcycle: `mlcycle check` is deprecated and will be removed in the next release; "
                      "use `mlcycle pipeline check`") and "missing.yaml" in err[1]


def test_old_explain_and_card_keep_their_defaults_and_say_what_changed():
    ex = parser().parse_args(["explain", "--row", "{}"])
    assert ex.local_model and ex.model is None and "models/model" in deprecation(ex)
    assert not getattr(parser().parse_args(["model", "explain", "--row", "{}"]), "local_model", False)
    cd = parser().parse_args(["card"])
    assert cd.latest_default and "latest" in deprecation(cd)


@pytest.mark.parametrize("ref, uri", [
    (None, "models:/m@champion"), ("3", "models:/m/3"), ("v3", "models:/m/3"), ("V12", "models:/m/12"),
    ("champion", "models:/m@champion"), ("@challenger", "models:/m@challenger"), ("my-alias_2", "models:/m@my-alias_2"),
    ("models:/other/4", "models:/other/4"), ("models:/m@champion", "models:/m@champion"),
    ("runs:/0123abcd/model", "runs:/0123abcd/model"), (" 5 ", "models:/m/5")])
def test_a_model_ref_resolves_to_one_uri(ref, uri):
    assert resolve_model_ref("m", ref) == uri


@pytest.mark.parametrize("ref", ["", "3.1", "@", "champ ion", "-3", "@1abc", "3/4", "models:"])
def test_a_bad_model_ref_names_model_and_the_accepted_forms(ref):
    with pytest.raises(MlcycleError, match=r"--model .* names no model; give a version \(3 or v3\), an alias"):
        resolve_model_ref("m", ref)


def test_registered_version_reads_aliases_from_the_store(tmp_path):
    """A real (SQLite) MLflow registry: versions as given, aliases looked up, no champion and an
    unknown alias or a run URI refused with what to pass instead."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, uri)
    client.create_registered_model("m")
    for _ in range(3):
        client.create_model_version("m", source=str(tmp_path / "model"))
    with pytest.raises(MlcycleError, match=r"no champion yet for 'm': run `make repro` or pass --model N"):
        registered_version(client, "m")
    client.set_registered_model_alias("m", "champion", "2")
    client.set_registered_model_alias("m", "challenger", "3")
    assert registered_version(client, "m") == "2"
    assert registered_version(client, "m", "@challenger") == registered_version(client, "m", "challenger") == "3"
    assert registered_version(client, "m", "v1") == "1" == registered_version(client, "m", "models:/m/1")
    assert registered_version(client, "m", "models:/m@champion") == "2"
    with pytest.raises(MlcycleError, match="no version of 'm' has the alias @staging"):
        registered_version(client, "m", "staging")
    for other in ("runs:/abc/model", "models:/other/1"):
        with pytest.raises(MlcycleError, match="needs a registered version of 'm'"):
            registered_version(client, "m", other)
