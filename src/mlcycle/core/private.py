"""Files and folders only their owner reads: what holds data rows, models, credentials or the
tracking store (prediction logs, labels, score outputs, the team stack's saved objects).

`mkdir` makes a folder 0700 whatever the umask, and makes an existing folder of ours that others can
read 0700 too (one written by an older version); `owner_only` does it to a whole tree (folders 0700,
files 0600), for what another library wrote with the umask's modes."""

from __future__ import annotations

import os
from pathlib import Path


def mkdir(path: Path, parents: bool = True, exist_ok: bool = True) -> Path:
    """Create `path` readable by its owner only (0700) and return it. An existing folder (when
    `exist_ok`) owned by this user is made 0700; one of another user is left as it is. With
    `parents=False` the parent must exist, with `exist_ok=False` the folder must not
    (FileNotFoundError, FileExistsError)."""
    path = Path(path)
    if not path.is_dir() or not exist_ok:
        path.mkdir(parents=parents, exist_ok=exist_ok, mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is reduced by the umask
        return path
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass
    return path


def owner_only(folder: Path) -> None:
    """Every folder under `folder` (itself included) 0700 and every file 0600."""
    for at, _dirs, files in os.walk(folder):
        os.chmod(at, 0o700)
        for f in files:
            os.chmod(os.path.join(at, f), 0o600)
