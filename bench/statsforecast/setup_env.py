"""Create or update the virtualenv that runs statsforecast for bench/bench_forecast.py.

statsforecast 2.0.3 cannot be installed beside the project's packages (it caps scipy below 1.16, and
its dependency fugue caps pandas below 3), so it gets a virtualenv of its own, `.venv-statsforecast`
at the repository root by default (`BENCH_STATSFORECAST_VENV` overrides), installed from PyPI with
the pins in requirements.txt beside this file. `bench_forecast.py` calls `ensure()` on every run:
the first run creates the environment (about a minute), later runs reuse it until requirements.txt
changes. The folder holds a `.gitignore` of `*`, so git never sees it (bench/venvs.py).

    python bench/statsforecast/setup_env.py          # create or update it by hand
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from venvs import IsolatedVenv, SetupError  # noqa: E402, F401 (SetupError: what ensure() raises)

ENV = IsolatedVenv("statsforecast", "statsforecast", HERE, "BENCH_STATSFORECAST_VENV",
                   "statsforecast, statsforecast.models, pandas, pyarrow, psutil")
venv_path, ensure = ENV.venv_path, ENV.ensure

if __name__ == "__main__":
    sys.exit(ENV.main())
