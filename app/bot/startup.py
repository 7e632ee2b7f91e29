"""Start-up checks: what the bot needs, one readable line per problem (never a traceback)."""

from __future__ import annotations

from app.chat.records import ChatRecords
from app.config import Settings
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.engine import EngineError, EngineUnavailable
from app.sandbox.starter import IMAGE_BUILD_HINT


async def startup_problems(
    settings: Settings, engine: DockerEngine, records: ChatRecords
) -> list[str]:
    problems = []
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        problems.append(
            "DISCORD_TOKEN is not set: put the bot token from the Discord developer portal in .env"
        )
    if not settings.openai_api_key.get_secret_value() and not settings.openai_base_url:
        problems.append("OPENAI_API_KEY is not set (or set OPENAI_BASE_URL to a local server)")
    if settings.mongodb_uri is None:
        problems.append(
            "MONGODB_URI is not set: the bot keeps conversations and usage in MongoDB "
            "(e.g. mongodb://localhost:27017)"
        )
    else:
        try:
            await records.ping()
        except Exception as exc:  # any driver fault is one line; the URI is never printed
            problems.append(f"MongoDB: {exc}; check MONGODB_URI and that MongoDB is running")
    try:
        await engine.call(engine.ping)
    except EngineUnavailable as exc:
        problems.append(f"Docker: {exc}")
        return problems
    try:
        labels = await engine.call(engine.image_labels, settings.sandbox_image)
    except (EngineError, EngineUnavailable) as exc:
        problems.append(f"Docker: cannot inspect the sandbox image: {str(exc)[:200]}")
        return problems
    if labels is None:
        problems.append(
            f"sandbox image {settings.sandbox_image} not found: build it with `{IMAGE_BUILD_HINT}`"
        )
    return problems
