"""Create or update the virtualenv that runs Evidently for bench/bench_drift.py.

Evidently 0.7.x cannot be imported with pandas 3 (the project's pandas), so it gets a virtualenv of
its own, `.venv-evidently` at the repository root by default (`BENCH_EVIDENTLY_VENV` overrides),
installed from PyPI with the pins in requirements.txt beside this file. `bench_drift.py` calls
`ensure()` on every run: the first run creates the environment (a minute or two), later runs reuse
it until requirements.txt changes. The folder holds a `.gitignore` of `*`, so git never sees it (bench/venvs.py).

    python bench/evidently/setup_env.py          # create or update it by hand
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from venvs import IsolatedVenv, SetupError  # noqa: E402, F401 (SetupError: what ensure() raises)

ENV = IsolatedVenv("Evidently", "evidently", HERE, "BENCH_EVIDENTLY_VENV",
                   "evidently, evidently.presets, pandas, pyarrow, psutil")
venv_path, ensure = ENV.venv_path, ENV.ensure

if __name__ == "__main__":
    sys.exit(ENV.main())
