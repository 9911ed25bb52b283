"""Create or update the virtualenv that runs statsforecast for bench/bench_forecast.py.

statsforecast 2.0.3 cannot be installed beside the project's packages (it caps scipy below 1.16, and
its dependency fugue caps pandas below 3), so it gets a virtualenv of its own, `.venv-statsforecast`
at the repository root by default (`BENCH_STATSFORECAST_VENV` overrides), installed from PyPI with
the pins in requirements.txt beside this file. `bench_forecast.py` calls `ensure()` on every run:
the first run creates the environment (about a minute), later runs reuse it until requirements.txt
changes. The folder holds a `.gitignore` of `*`, so git never sees it.

    python bench/statsforecast/setup_env.py          # create or update it by hand
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REQUIREMENTS = HERE / "requirements.txt"
DEFAULT_VENV = ROOT / ".venv-statsforecast"


class SetupError(RuntimeError):
    pass


def venv_path() -> Path:
    return Path(os.environ.get("BENCH_STATSFORECAST_VENV", DEFAULT_VENV)).resolve()


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                        if not line.startswith("WARNING: Location"))
        raise SetupError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{out[-4000:]}")


def ensure(venv: Path | None = None, log=print) -> Path:
    """The Python of the statsforecast virtualenv, created or reinstalled when requirements.txt changed."""
    venv = venv or venv_path()
    py, stamp = python_of(venv), venv / ".installed"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if py.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return py
    log(f"setting up statsforecast's virtualenv {venv} from {REQUIREMENTS.relative_to(ROOT)} "
        "(first run only; downloads from PyPI)")
    if not py.exists():
        run([sys.executable, "-m", "venv", str(venv)], "creating the virtualenv")
    (venv / ".gitignore").write_text("# created by bench/statsforecast/setup_env.py\n*\n")
    stamp.unlink(missing_ok=True)
    run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        "pip install of statsforecast")
    run([str(py), "-c", "import statsforecast, statsforecast.models, pandas, pyarrow, psutil"],
        "importing statsforecast in its virtualenv")
    stamp.write_text(want + "\n")
    return py


def main() -> int:
    try:
        py = ensure()
    except SetupError as e:
        print(f"ERROR: could not set up statsforecast's virtualenv: {e}", file=sys.stderr)
        return 1
    out = subprocess.run([str(py), "-c", "import statsforecast, pandas; print(statsforecast.__version__, pandas.__version__)"],
                         capture_output=True, text=True, check=True).stdout.split()
    print(f"{py}: statsforecast {out[0]}, pandas {out[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
