#!/usr/bin/env bash
# The main command: sets up what is missing (virtualenv, Docker engine, sandbox image), then runs
# `python -m app` with the arguments given, e.g. `bash scripts/start.sh run examples/plot.py`.
set -euo pipefail
. "$(dirname "$0")/setup.sh"   # keeps the caller's working directory: paths stay relative to it
ensure_python_env
ensure_docker
ensure_image
ensure_package_ca
exec "$VENV/bin/python" -m app "$@"
