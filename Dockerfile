# The bot's image (`docker compose build bot`). Sandbox runs use their own image (sandbox-image/).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/codeinterp
COPY pyproject.toml README.md ./
COPY app ./app
COPY sandbox-image ./sandbox-image
# tiktoken's encoding files are fetched here, at build time, so the running bot (read-only, maybe
# offline) counts tokens exactly; without network here it falls back to estimates, never blocks.
ENV TIKTOKEN_CACHE_DIR=/srv/codeinterp/tiktoken
RUN pip install . \
    && useradd --system --uid 10000 --home-dir /srv/codeinterp --shell /usr/sbin/nologin bot \
    && mkdir -p /data && chown bot:bot /data \
    && (python -c "import tiktoken; [tiktoken.get_encoding(n) for n in ('o200k_base', 'cl100k_base')]" \
        || echo "tiktoken encodings not fetched: the bot will estimate token counts")

USER bot
ENV DATA_DIR=/data
CMD ["python", "-m", "app", "bot"]
