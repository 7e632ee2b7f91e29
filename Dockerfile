# The app image: the Discord bot and the sandbox service, one image with two commands (`bot`,
# the default, and `sandboxd`). Sandbox runs use their own image (sandbox-image/).
#   docker compose build                     # on a host with a registry
#   python -m app image build-app            # anywhere: reuses a build of the same sources, and
#                                            # builds FROM a Debian base when nothing can be pulled
# BASE_IMAGE is any Debian-based image with python3 (3.11+) and python3-venv.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG PIP_INDEX_URL=""
ARG PIP_EXTRA_INDEX_URL=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8
WORKDIR /srv/codeinterp

# Dependencies first, so a change to app/ rebuilds only the last layers. The admin's extra CA
# certificates (sandbox-image/extra-ca/, as for the sandbox image) are trusted for pip and for
# tiktoken, whose encoding files are fetched here, at build time, so the running bot (read-only,
# maybe offline) counts tokens exactly; without network here it falls back to estimates.
ENV TIKTOKEN_CACHE_DIR=/srv/codeinterp/tiktoken
COPY pyproject.toml README.md ./
COPY sandbox-image/extra-ca/ /tmp/extra-ca/
RUN set -eu; \
    bundle=/tmp/ca-bundle.pem; \
    cat /etc/ssl/certs/ca-certificates.crt > "$bundle" 2>/dev/null || : > "$bundle"; \
    for f in /tmp/extra-ca/*.pem /tmp/extra-ca/*.crt; do \
        [ -f "$f" ] && { cat "$f"; echo; } >> "$bundle"; \
    done; \
    export PIP_CERT="$bundle"; \
    [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; \
    [ -n "$PIP_EXTRA_INDEX_URL" ] || unset PIP_EXTRA_INDEX_URL; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --prefer-binary "setuptools>=68" wheel; \
    mkdir app && touch app/__init__.py; \
    /opt/venv/bin/pip install --prefer-binary --no-build-isolation .; \
    REQUESTS_CA_BUNDLE="$bundle" SSL_CERT_FILE="$bundle" /opt/venv/bin/python -c \
        "import tiktoken; [tiktoken.get_encoding(n) for n in ('o200k_base', 'cl100k_base')]" \
        || echo "tiktoken encodings not fetched: the bot will estimate token counts"; \
    rm -rf app /tmp/extra-ca "$bundle" /root/.cache

# /data is the process's DATA_DIR; /run/codeinterp is where the bot and sandboxd share the
# service's socket (a volume mounted there takes this owner and mode).
COPY app ./app
COPY sandbox-image ./sandbox-image
RUN set -eu; \
    /opt/venv/bin/pip install --no-deps --no-build-isolation --force-reinstall .; \
    rm -rf build ./*.egg-info sandbox-image/extra-ca/*.pem sandbox-image/extra-ca/*.crt; \
    /usr/sbin/useradd --system --uid 10000 --home-dir /srv/codeinterp --shell /usr/sbin/nologin bot; \
    mkdir -p /data /run/codeinterp; \
    chown bot:bot /data /run/codeinterp; \
    chmod 0750 /run/codeinterp

USER bot
ENV DATA_DIR=/data
CMD ["python", "-m", "app", "bot"]
