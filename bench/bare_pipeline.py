"""The bare baseline: the pipeline's own computations in one Python process, nothing else.

It runs the code cells of every stage notebook of the workspace's task in order (the same calls into `src/mlcycle`, on the
same data, with the same params, writing the same files), then builds the index page. No kernels,
no papermill, no HTML rendering, no DVC, no MLflow tracking (the gate finds no registry and says so).

    python bench/bare_pipeline.py WORKSPACE
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import nbformat


def main(ws: Path) -> None:
    os.chdir(ws)
    os.environ["MLCYCLE_ROOT"] = str(ws)
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(ws / "src"))
    from mlcycle.core import config
    from mlcycle.core.paths import NOTEBOOKS, Paths
    from mlcycle.stages import report

    params = config.load("params.yaml", root=ws)
    paths = Paths.at(ws)
    for stage, name in NOTEBOOKS.items():
        nb = nbformat.read(paths.notebook(stage, params.task), as_version=4)  # notebooks/<task>/, or the shared one
        scope = {"__name__": f"bare_{stage}", "params_file": "params.yaml", "write": True}
        for cell in nb.cells:
            if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
                continue
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.source, name, "exec"), scope)
        import matplotlib.pyplot as plt

        plt.close("all")
    report.build_index(paths, params)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
