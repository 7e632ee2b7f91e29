#!/usr/bin/env bash
# The test command: installs what the tests need, checks lint, format and types first (seconds),
# starts a Docker engine when none answers (as root), builds the sandbox image (reused when its
# content hash matches), then runs the whole suite, real containers included. Extra arguments go
# to pytest, e.g. `bash scripts/test.sh -k oom`; the fast lane without Docker is
# `.venv/bin/pytest -m "not docker"`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
ensure_python_env test
log "ruff, then mypy"
"$VENV/bin/ruff" check app tests sandbox-image/runtime
"$VENV/bin/ruff" format --check app tests sandbox-image/runtime
"$VENV/bin/mypy"
ensure_docker
ensure_compose_validator
ensure_image
ensure_package_ca
exec "$VENV/bin/python" -m pytest "$@"
