"""The server's settings: `Settings` (everything a worker needs), `settings()` resolving them from
params.yaml `serve:` and the CLI flags, the environment variable a uvicorn worker receives them in
(`SETTINGS_ENV`, as JSON), and the schema's numeric ranges requests are checked against
(`schema_bounds`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from mlcycle.core.errors import ServeError

SETTINGS_ENV = "MLCYCLE_SERVE_SETTINGS"
LOG_LEVEL_ENV = "MLCYCLE_SERVE_LOG_LEVEL"  # the workers' log level (`mlcycle serving start --log-level`)


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs, resolved from params.yaml `serve:` and the CLI."""

    model_uri: str
    tracking_uri: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_rows: int = 1000
    max_body_bytes: int = 8_000_000
    max_text_chars: int = 100_000
    body_timeout_seconds: float = 30.0
    not_null: tuple[str, ...] = ()
    reload_seconds: float = 10.0
    log_dir: str = "data/predictions"
    log_max_rows: int = 100_000
    log_roll_seconds: float = 60.0
    log_queue_rows: int = 200_000
    log_queue_bytes: int = 64_000_000
    token_env: str = "MLCYCLE_SERVE_TOKEN"
    log_fallback_dir: str = "data/predictions-fallback"
    log_failure: str = "refuse"  # refuse: 503 while the log cannot be written; serve: keep answering
    ranges: str = "warn"  # values outside `bounds`: warn (log and count), refuse (422), off
    bounds: dict = field(default_factory=dict)  # column -> [min, max] (either may be None) from the schema
    compiled: bool = True  # score through the model's compiled form when it has one that agreed
    release: dict = field(default_factory=lambda: {"mode": "off"})  # params serve.release (mode, candidate, share, key, header)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        raw = json.loads(text)
        raw["not_null"] = tuple(raw.get("not_null", ()))
        return cls(**raw)


def not_null_columns(params) -> tuple[str, ...]:
    """The columns whose null a scorer refuses: serve.not_null, or data.required_columns for auto."""
    return tuple(params.data.required_columns if params.serve.not_null == "auto" else params.serve.not_null)


def settings(root: Path, params, **overrides) -> Settings:
    """Settings from params (a `config.Params`) with CLI overrides (None values are ignored)."""
    from pydantic import ValidationError

    from mlcycle.core.config import ServeParams
    from mlcycle.core.paths import Paths
    from mlcycle.core.workspace import Workspace

    over = {k: v for k, v in overrides.items() if v is not None}
    try:  # flags get the same checks as params.yaml
        s = ServeParams.model_validate({**params.serve.model_dump(), **over})
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ServeError(f"serve: --{str(e['loc'][0]).replace('_', '-')}: {e['msg']} (got {e.get('input')!r})") from None
    ws = Workspace(Paths(root), params)
    values = dict(
        model_uri=s.model_uri or ws.champion_uri(),
        tracking_uri=ws.tracking_uri, host=s.host, port=s.port, workers=s.workers,
        max_rows=s.max_rows, max_body_bytes=int(s.max_body_mb * 1_000_000),
        max_text_chars=s.max_text_chars, body_timeout_seconds=s.body_timeout_seconds,
        not_null=not_null_columns(params),
        reload_seconds=s.reload_seconds, log_dir=s.log_dir, log_max_rows=s.log_max_rows,
        log_roll_seconds=s.log_roll_seconds, log_queue_rows=s.log_queue_rows,
        log_queue_bytes=int(s.log_queue_mb * 1_000_000), token_env=s.token_env,
        log_fallback_dir=s.log_fallback_dir, log_failure=s.log_failure,
        ranges=s.ranges, bounds=schema_bounds(root, params) if s.ranges != "off" else {},
        compiled=s.compiled, release=s.release.model_dump(),
    )
    for key in ("log_dir", "log_fallback_dir"):
        folder = Path(values[key])
        values[key] = str(folder if folder.is_absolute() else Path(root) / folder)
    return Settings(**values)


def schema_bounds(root: Path, params) -> dict[str, list]:
    """{column: [min, max]} of the reviewed schema's numeric ranges (`validate.schema`, else
    schemas/<data file stem>.yaml); {} without a schema file. Only columns the model takes are checked."""
    from mlcycle.core import schema as schema_mod

    path = schema_mod.schema_path(params.data, params.validate_, Path(root))
    if not path.exists():
        return {}
    table = schema_mod.load(path)
    return {name: [c.min, c.max] for name, c in table.columns.items() if c.min is not None or c.max is not None}
