#!/bin/sh
# Entry point of the mlcycle serving image (deploy/Dockerfile; docs/operations.md).
#   entrypoint.sh [serve] [extra `mlcycle serving start` flags]   serve the model named by $MLCYCLE_MODEL_URI
#   entrypoint.sh healthcheck                             exit 0 when the server's /ready answers 200
#   entrypoint.sh COMMAND ...                             run COMMAND (a shell, `mlcycle model list`, ...)
# Settings, all optional:
#   MLCYCLE_MODEL_URI   registered model to serve, models:/NAME@ALIAS or models:/NAME/VERSION
#                       (default: params.yaml serve.model_uri, else the champion)
#   MLFLOW_TRACKING_URI the tracking server holding the registry (default: params.yaml tracking.uri,
#                       else the workspace's own store under mlruns/)
#   MLCYCLE_ROOT        the workspace folder holding params.yaml (the image's is /srv/mlcycle)
#   MLCYCLE_HOST        address to listen on (default 0.0.0.0: reachable from outside the container)
#   MLCYCLE_PORT        port (default 8000)
#   MLCYCLE_WORKERS     worker processes (default: params.yaml serve.workers)
#   MLCYCLE_SERVE_TOKEN bearer token /predict requires (the server warns when it listens beyond
#                       loopback without one)
set -eu

port="${MLCYCLE_PORT:-8000}"
case "$port" in
    ''|*[!0-9]*) echo "entrypoint: MLCYCLE_PORT must be a port number, got '$port'" >&2; exit 2 ;;
esac

if [ -n "${MLCYCLE_ROOT:-}" ]; then
    cd "$MLCYCLE_ROOT" || { echo "entrypoint: MLCYCLE_ROOT=$MLCYCLE_ROOT is not a folder" >&2; exit 2; }
fi

cmd="${1:-serve}"
case "$cmd" in
    serve)
        [ $# -gt 0 ] && shift
        set -- --host "${MLCYCLE_HOST:-0.0.0.0}" --port "$port" "$@"
        if [ -n "${MLCYCLE_WORKERS:-}" ]; then
            set -- --workers "$MLCYCLE_WORKERS" "$@"
        fi
        if [ -n "${MLCYCLE_MODEL_URI:-}" ]; then
            set -- --model "$MLCYCLE_MODEL_URI" "$@"
        fi
        # exec: the server is the container's main process and receives SIGTERM itself, so a stop
        # drains requests and writes the prediction log before exiting
        exec mlcycle serving start "$@"
        ;;
    healthcheck)
        exec python - "$port" <<'PY'
import sys
import urllib.request

try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/ready", timeout=4) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception as exc:  # refused, 503 (not ready), timeout
    print(f"healthcheck: /ready: {exc}", file=sys.stderr)
    sys.exit(1)
PY
        ;;
    *)
        exec "$@"
        ;;
esac
