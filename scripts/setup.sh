# Shared setup for scripts/test.sh and scripts/start.sh (sourced, not run). Each step is idempotent
# and reuses what is already there: the virtualenv (reinstalled only when pyproject.toml changes),
# a running Docker engine, and a sandbox image whose content hash matches sandbox-image/.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
    is_root && command -v apt-get >/dev/null || return 1
    if [ -z "${_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_python_env() {  # $1: pip extras, e.g. "test" (optional)
    local py="" stamp spec candidate
    for candidate in python3 python3.13 python3.12 python3.11; do
        # Version-manager shims may exist for versions that are not installed: try each one.
        if command -v "$candidate" >/dev/null \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            py=$(command -v "$candidate"); break
        fi
    done
    [ -n "${py:-}" ] || die "Python 3.11 or newer is needed (python3 --version)"
    [ -x "$VENV/bin/python" ] || { log "creating .venv"; "$py" -m venv "$VENV"; }
    spec="$ROOT"; [ -n "${1:-}" ] && spec="$ROOT[$1]"
    stamp="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-${1:-base}"
    if [ ! -f "$stamp" ]; then
        log "installing the project into .venv ($spec)"
        "$VENV/bin/pip" install -q --disable-pip-version-check -e "$spec" >&2
        touch "$stamp"
    fi
}

ensure_compose_validator() {  # the compose file's test validates it with docker-compose
    command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 && return 0
    apt_install docker-compose || log "docker-compose not installable: the compose test will skip"
}

docker_answers() { docker info >/dev/null 2>&1; }

ensure_docker() {
    docker_answers && return 0
    is_root || die "no Docker engine answers; start Docker (or run this as root to let it start one)"
    if ! command -v dockerd >/dev/null; then
        log "installing docker.io"
        apt_install docker.io || die "could not install docker.io; install Docker and start it"
    fi
    command -v runsc >/dev/null || apt_install runsc || log "gVisor (runsc) not installed; runc only"
    command -v runsc >/dev/null && register_runsc
    # A dockerd killed with its machine session leaves pid files that block the next start.
    for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
            rm -f "$pidfile"
        fi
    done
    log "starting dockerd (log: /var/log/codeinterp-dockerd.log)"
    nohup dockerd >/var/log/codeinterp-dockerd.log 2>&1 &
    # The suite owns this engine: tests/integration/test_engine_faults.py may restart it.
    export CODEINTERP_ENGINE_PID=$!
    for _ in $(seq 60); do docker_answers && return 0; sleep 1; done
    tail -20 /var/log/codeinterp-dockerd.log >&2
    die "dockerd did not come up within 60 s"
}

register_runsc() {  # add gVisor to /etc/docker/daemon.json, keeping whatever else it says
    mkdir -p /etc/docker
    python3 - <<'PY'
import json, os
path = "/etc/docker/daemon.json"
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
runtimes = config.setdefault("runtimes", {})
if "runsc" not in runtimes:
    runtimes["runsc"] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--platform=ptrace"]}
    json.dump(config, open(path, "w"), indent=2)
PY
}

ensure_image() {
    local hash args=()
    hash=$("$VENV/bin/python" -m app image hash) || die "the project is not installed in .venv"
    if ! docker image inspect "codeinterp-sandbox:$hash" >/dev/null 2>&1; then
        # A base may have to come from Debian packages (no registry): have debootstrap ready.
        command -v debootstrap >/dev/null || apt_install debootstrap || true
    fi
    # Trust what this machine trusts: behind a TLS-intercepting proxy its CA is in this bundle.
    [ -f /etc/ssl/certs/ca-certificates.crt ] && args+=(--extra-ca /etc/ssl/certs/ca-certificates.crt)
    "$VENV/bin/python" -m app image build "${args[@]}" >/dev/null
}

ensure_package_ca() {  # package installs trust what this machine trusts, unless set elsewhere
    [ -n "${PACKAGE_CA_BUNDLE+set}" ] && return 0
    grep -qs '^[[:space:]]*PACKAGE_CA_BUNDLE=' .env && return 0
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        export PACKAGE_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
    fi
    return 0
}
