"""Virtualenvs of their own for the libraries a benchmark compares against that cannot be installed
beside the project's packages (Evidently 0.7 with pandas 3; statsforecast 2.0.3 with scipy 1.16 and
pandas 3). Each lives at the repository root (`.venv-<name>`, an environment variable overrides),
installed from PyPI with the pins of a requirements.txt; `ensure()` creates it on first use and
reinstalls it when that file changes. The folder holds a `.gitignore` of `*`, so git never sees it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class SetupError(RuntimeError):
    pass


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                        if not line.startswith("WARNING: Location"))
        raise SetupError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{out[-4000:]}")


@dataclass(frozen=True)
class IsolatedVenv:
    """One library's virtualenv: `shown` names it in messages, `package` is its import name,
    `imports` what must import once installed."""

    shown: str
    package: str
    folder: Path  # holds requirements.txt and the setup script
    env_var: str  # overrides the default location
    imports: str

    @property
    def requirements(self) -> Path:
        return self.folder / "requirements.txt"

    def venv_path(self) -> Path:
        return Path(os.environ.get(self.env_var, ROOT / f".venv-{self.folder.name}")).resolve()

    def ensure(self, venv: Path | None = None, log=print) -> Path:
        """The Python of the virtualenv, created or reinstalled when requirements.txt changed."""
        venv = venv or self.venv_path()
        py, stamp = python_of(venv), venv / ".installed"
        want = hashlib.sha256(self.requirements.read_bytes()).hexdigest()
        if py.exists() and stamp.exists() and stamp.read_text().strip() == want:
            return py
        log(f"setting up {self.shown}'s virtualenv {venv} from {self.requirements.relative_to(ROOT)} "
            "(first run only; downloads from PyPI)")
        if not py.exists():
            _run([sys.executable, "-m", "venv", str(venv)], "creating the virtualenv")
        (venv / ".gitignore").write_text(f"# created by bench/{self.folder.name}/setup_env.py\n*\n")
        stamp.unlink(missing_ok=True)
        _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(self.requirements)],
             f"pip install of {self.shown}")
        _run([str(py), "-c", f"import {self.imports}"], f"importing {self.shown} in its virtualenv")
        stamp.write_text(want + "\n")
        return py

    def main(self) -> int:
        """Create or update it by hand, then say which versions it holds."""
        try:
            py = self.ensure()
        except SetupError as e:
            print(f"ERROR: could not set up {self.shown}'s virtualenv: {e}", file=sys.stderr)
            return 1
        code = f"import {self.package}, pandas; print({self.package}.__version__, pandas.__version__)"
        out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True).stdout.split()
        print(f"{py}: {self.package} {out[0]}, pandas {out[1]}")
        return 0
