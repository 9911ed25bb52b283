"""The docs checked against the code: every `mlcycle.` dotted name the README and docs/ mention is
importable (or is a tag or key name the code writes), every `mlcycle` command line they show names
commands and options that exist, and every example in `make help` is accepted by the command it
runs. A deprecated spelling (`mlcycle serve`) is stale too, except in the table of renamed commands
of docs/index.md. Each check is also shown failing on a planted stale name."""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import shlex
from functools import cache
from pathlib import Path

from mlcycle.cli.main import listed, parser, subcommands
from tests.conftest import ROOT

DOTTED = re.compile(r"(?<![\w/.-])mlcycle(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
RUN_MODULE = re.compile(r"python -m (mlcycle(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
COMMAND = re.compile(r"(?:^|`|\$ |&& |; )(mlcycle(?: [^`\n#|&;]*)?)", re.MULTILINE)


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def resolves(name: str) -> bool:
    """An importable module, or an attribute of one (`mlcycle.core.config.SEARCHABLE`)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@cache
def written_names() -> tuple[frozenset[str], tuple[str, ...]]:
    """(string constants of src/mlcycle, the constant starts of its f-strings): the tag and key names
    the code writes (`mlcycle.git.dirty`, f"mlcycle.dvc.{kind}.{path}")."""
    whole, starts = set(), set()
    for f in (ROOT / "src" / "mlcycle").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("mlcycle."):
                whole.add(node.value)
            elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                first = str(node.values[0].value)
                if first.startswith("mlcycle."):
                    starts.add(first)
    return frozenset(whole), tuple(sorted(starts))


def written_by_code(name: str) -> bool:
    whole, starts = written_names()
    return (name in whole or any(w.startswith(name + ".") or w.startswith(name + "-") for w in whole)
            or any(name.startswith(s) for s in starts))


def stale_names(files: list[Path], root: Path = ROOT) -> list[str]:
    """`<file>: <name>` for each dotted name that neither imports nor is written by the code (a name
    after `python -m` must import)."""
    out = []
    for f in files:
        text = f.read_text()
        modules = set(RUN_MODULE.findall(text))
        for name in sorted({m.rstrip(".") for m in DOTTED.findall(text)}):
            if not (resolves(name) or (name not in modules and written_by_code(name))):
                out.append(f"{f.relative_to(root).as_posix()}: {name}")
    return out


@cache
def parsers() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command path of the `mlcycle` parser ((), ("model",), ("model", "promote"), ...; hidden
    and deprecated ones included) with its parser."""
    out: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(p: argparse.ArgumentParser, path: tuple[str, ...]):
        out[path] = p
        sub = subcommands(p)
        for name, child in (sub.choices.items() if sub else ()):
            walk(child, (*path, name))

    walk(parser(), ())
    return out


@cache
def commands() -> dict[tuple[str, ...], frozenset[str]]:
    """Every command path with its options."""
    return {path: frozenset(s for a in p._actions for s in a.option_strings) for path, p in parsers().items()}


def visible_commands() -> list[tuple[str, ...]]:
    """The command paths `mlcycle --help` and the groups' help list (hidden ones left out)."""
    top = subcommands(parser())
    out = []
    for name, child in top.choices.items():
        if name in listed(top):
            sub = subcommands(child)
            out += [(name, c) for c in listed(sub)] if sub else [(name,)]
    return out


def bad_command(line: str, renamed_ok: bool = False) -> str | None:
    """Why a documented `mlcycle ...` line names a command or option that does not exist, or a
    deprecated spelling (unless `renamed_ok`), or None."""
    try:
        words = shlex.split(line.replace("[", " ").replace("]", " "))
    except ValueError:
        words = line.split()
    known = commands()
    path: tuple[str, ...] = ()
    rest = words[1:]
    while rest and (*path, rest[0]) in known:
        path, rest = (*path, rest[0]), rest[1:]
    if rest and re.fullmatch(r"[a-z][a-z-]*", rest[0]) and subcommands(parsers()[path]) is not None:
        return f"no command '{' '.join((*path, rest[0]))}'"
    old = parsers()[path].get_default("deprecated")
    if old and not renamed_ok:
        return f"`{old[0]}` is a deprecated spelling: use `{old[1]}`"
    options = known[path] | known[()]
    for w in rest:
        flag = w.split("=", 1)[0]
        if flag.startswith("--") and flag not in options:
            return f"`mlcycle {' '.join(path)}` has no option {flag}"
    return None


def renamed_section(text: str) -> tuple[int, int]:
    """Where the table of renamed commands is (docs/index.md), the one place old spellings belong."""
    start = text.find("### Renamed commands")
    if start < 0:
        return 0, 0
    end = text.find("\n#", start + 1)
    return start, len(text) if end < 0 else end


def stale_commands(files: list[Path], root: Path = ROOT) -> list[str]:
    out = []
    for f in files:
        text = f.read_text()
        start, end = renamed_section(text)
        for m in COMMAND.finditer(text):
            why = bad_command(m.group(1).strip(), renamed_ok=start <= m.start() < end)
            if why:
                out.append(f"{f.relative_to(root).as_posix()}: `{m.group(1).strip()}`: {why}")
    return out


def make_help_examples(makefile: Path) -> list[tuple[str, str]]:
    """(command line, target) for each `VAR="..."` example of a target's `##` help whose recipe runs
    `mlcycle <command> $(VAR)`."""
    text = makefile.read_text()
    out = []
    for m in re.finditer(r"^([\w-]+):[^\n]*## ([^\n]*)\n((?:\t[^\n]*\n)+)", text, re.MULTILINE):
        target, helptext, recipe = m.groups()
        for var, example in re.findall(r'(\w+_ARGS)="([^"]*)"', helptext):
            run = re.search(r"mlcycle ([\w -]+?) \$\((?:or )?\$?\(?" + var, recipe)
            if run:
                out.append((f"mlcycle {run.group(1).strip()} {example}", target))
    return out


def test_every_dotted_name_in_the_docs_exists():
    assert stale_names(doc_files()) == []


def test_every_documented_command_and_option_exists():
    assert stale_commands(doc_files()) == []


def test_make_help_examples_are_accepted_by_their_command():
    examples = make_help_examples(ROOT / "Makefile")
    assert {t for _, t in examples} >= {"serve", "monitor", "simulate"}
    assert [f"make {t}: {line}: {bad_command(line)}" for line, t in examples if bad_command(line)] == []


def test_the_checks_fail_on_planted_stale_names(tmp_path):
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "planted.md"
    doc.write_text("Run `python -m mlcycle.trackd`, call `mlcycle.config.SEARCHABLE` or `mlcycle.show.figure`;\n"
                   "the tag `mlcycle.git.dirty` is fine, and so is `mlcycle.core.config.SEARCHABLE`.\n\n"
                   "```bash\nmlcycle serving score --input a.csv --output b.parquet --batch 3\nmlcycle deploy now\n"
                   "mlcycle model deploy\nmlcycle serve --port 8000\n```\n\n### Renamed commands\n\n"
                   "| `mlcycle serve` | `mlcycle serving start` |\n")
    assert stale_names([doc], tmp_path) == ["docs/planted.md: mlcycle.config.SEARCHABLE",
                                            "docs/planted.md: mlcycle.show.figure", "docs/planted.md: mlcycle.trackd"]
    assert stale_commands([doc], tmp_path) == [
        "docs/planted.md: `mlcycle serving score --input a.csv --output b.parquet --batch 3`: `mlcycle serving score` has no option --batch",
        "docs/planted.md: `mlcycle deploy now`: no command 'deploy'",
        "docs/planted.md: `mlcycle model deploy`: no command 'model deploy'",
        "docs/planted.md: `mlcycle serve --port 8000`: `mlcycle serve` is a deprecated spelling: use "
        "`mlcycle serving start --model REF`"]
    make = tmp_path / "Makefile"
    make.write_text('simulate: setup ## a replay (SIM_ARGS="--months 3")\n\tmlcycle monitoring simulate $(SIM_ARGS)\n')
    [(line, target)] = make_help_examples(make)
    assert target == "simulate" and bad_command(line) == "`mlcycle monitoring simulate` has no option --months"


def test_mlcycle_stages_prints_only_paths_that_exist(capsys, monkeypatch):
    """`mlcycle pipeline stages` maps each stage to its notebook, code and tests as dvc.yaml runs them for the
    active task: every path it prints exists, and the tables and monitor stages are listed."""
    from mlcycle.cli.main import main

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("MLCYCLE_ROOT", raising=False)
    assert main(["pipeline", "stages"]) == 0
    table = capsys.readouterr().out.split("\n\n", 1)[1].splitlines()[1:]
    stages = [line.split()[0] for line in table if not line.startswith(" ")]
    assert stages == ["ingest", "tables", "validate", "eda", "features", "train", "evaluate", "report", "monitor"]
    printed = {w for line in table for w in line.split() if w.startswith(("src/", "notebooks/", "tests/"))}
    assert len(printed) > 15 and [p for p in sorted(printed) if not (ROOT / p).exists()] == []


def test_the_docs_front_page_names_every_command():
    text = (ROOT / "docs" / "index.md").read_text()
    named = {tuple(m.split()) for m in re.findall(r"`mlcycle ([a-z-]+(?: [a-z-]+)?)", text)}
    named |= {m[:1] for m in named}
    assert len(visible_commands()) > 25 and sorted(set(visible_commands()) - named) == []
