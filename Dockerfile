# The bot's image (`docker compose build bot`). Sandbox runs use their own image (sandbox-image/).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/codeinterp
COPY pyproject.toml README.md ./
COPY app ./app
COPY sandbox-image ./sandbox-image
RUN pip install . \
    && useradd --system --uid 10000 --home-dir /srv/codeinterp --shell /usr/sbin/nologin bot \
    && mkdir -p /data && chown bot:bot /data

USER bot
ENV DATA_DIR=/data
CMD ["python", "-m", "app", "bot"]
