"""OpenAI-compatible local servers: tools rejected -> plain chat, remembered per model; the
context window and timeout settings; specific sentences for the errors users meet."""

import httpx2 as httpx
import openai
import pytest

from app.chat import Turn, tokens
from app.chat.messages import TOOLS_UNAVAILABLE, model_error_message, rejects_tools
from app.chat.model_call import CHAT_ONLY_PROMPT, ToolSupport
from app.config import Settings
from app.wiring import Components
from tests.fakes.openai_server import error, reply

OLLAMA = (400, "registry.ollama.ai/library/gemma:2b does not support tools")
VLLM = (
    400,
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
)
LLAMA_CPP = (500, "tools param requires --jinja flag")


@pytest.mark.parametrize(
    "rejection", [OLLAMA, VLLM, LLAMA_CPP], ids=["ollama", "vllm", "llama.cpp"]
)
async def test_a_server_that_rejects_tools_gets_the_turn_again_as_plain_chat(
    make_chat, runner, tmp_path, fake_openai, rejection
):
    fake_openai.reject_tools = rejection
    chat = make_chat(runner, tmp_path, tools=ToolSupport("auto"))
    await chat.records.save_turns(
        "u1",
        "c1",
        [
            Turn(
                [
                    {"role": "user", "content": "earlier"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c0",
                                "type": "function",
                                "function": {"name": "x", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c0", "content": "{}"},
                    {"role": "assistant", "content": "it was 3"},
                ]
            )
        ],
    )
    fake_openai.add(reply("Plain answer."), reply("Second plain answer."))

    answer = await chat.turn("u1", "c1", "what is 2+2?")

    assert answer.text == "Plain answer." and answer.error == ""
    assert answer.notices == [TOOLS_UNAVAILABLE]
    offered, retried = fake_openai.requests
    assert offered["tools"] and "tools" not in retried
    roles = [m["role"] for m in retried["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # no tool messages for such a server
    assert retried["messages"][0]["content"] == CHAT_ONLY_PROMPT

    # remembered for this model: the next turn goes straight to plain chat, and says so
    again = await chat.turn("u1", "c1", "and 3+3?")
    assert again.text == "Second plain answer." and again.notices == [TOOLS_UNAVAILABLE]
    assert len(fake_openai.requests) == 3 and "tools" not in fake_openai.requests[2]


async def test_the_fallback_is_per_model(make_chat, runner, tmp_path, fake_openai):
    chat = make_chat(runner, tmp_path, tools=ToolSupport("auto"))
    fake_openai.reject_tools = OLLAMA
    fake_openai.add(reply("plain"))
    await chat.turn("u1", "c1", "hi")
    fake_openai.reject_tools = None
    await chat.set_model("u1", "gpt-4o")
    fake_openai.add(reply("with tools"))
    answer = await chat.turn("u1", "c1", "hi")
    assert fake_openai.requests[-1]["tools"] and answer.notices == []


async def test_with_tools_on_a_rejection_is_an_error_not_a_fallback(
    make_chat, runner, tmp_path, fake_openai
):
    fake_openai.reject_tools = OLLAMA
    chat = make_chat(runner, tmp_path, tools=ToolSupport("on"))
    answer = await chat.turn("u1", "c1", "hi")
    assert len(fake_openai.requests) == 1
    assert answer.error == (
        "The model service rejected this request. Try /reset to start a fresh conversation."
    )


async def test_with_tools_off_no_tool_is_offered_and_nothing_is_said(
    make_chat, runner, tmp_path, fake_openai
):
    chat = make_chat(runner, tmp_path, tools=ToolSupport("off"))
    fake_openai.add(reply("chat only"))
    answer = await chat.turn("u1", "c1", "hi")
    assert "tools" not in fake_openai.requests[0] and answer.notices == []
    assert fake_openai.requests[0]["messages"][0]["content"] == CHAT_ONLY_PROMPT


async def test_another_bad_request_does_not_turn_tools_off(
    make_chat, runner, tmp_path, fake_openai
):
    chat = make_chat(runner, tmp_path, tools=ToolSupport("auto"))
    fake_openai.add(error(400, "Invalid value for 'tool_choice'"), reply("fine"))
    await chat.turn("u1", "c1", "hi")
    await chat.turn("u1", "c1", "hi")
    assert fake_openai.requests[1]["tools"]  # still offered


def status_error(status: int, message: str, code: str | None = None, headers=None):
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    body = {"message": message, "code": code}
    classes = {
        400: openai.BadRequestError,
        404: openai.NotFoundError,
        429: openai.RateLimitError,
        500: openai.InternalServerError,
    }
    return classes[status](message, response=response, body=body)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            status_error(
                400,
                "This model's maximum context length is 8192 tokens.",
                "context_length_exceeded",
            ),
            "no longer fits the model's context window. Use /reset",
        ),
        (
            status_error(400, "the request exceeds the available context size, try increasing it"),
            "no longer fits the model's context window",
        ),
        (
            status_error(
                400,
                "You uploaded an unsupported image. Please make sure your image is valid.",
                "invalid_image_format",
            ),
            "could not read the attached image",
        ),
        (
            status_error(404, 'model "llama9" not found, try pulling it first'),
            "`llama9` is not available",
        ),
        (status_error(400, "The model `llama9` does not exist."), "`llama9` is not available"),
        (
            status_error(429, "Rate limit reached", headers={"retry-after": "20"}),
            "rate limiting us right now. Please try again in 20 s.",
        ),
        (
            status_error(429, "Rate limit reached", headers={"x-ratelimit-reset-tokens": "6m0s"}),
            "Please try again in 6 min.",
        ),
        (
            status_error(429, "Rate limit reached for gpt-4o. Please try again in 1.5s."),
            "Please try again in 2 s.",
        ),
        (status_error(429, "Rate limit reached"), "Please try again in a minute."),
        (
            status_error(429, "You exceeded your current quota", "insufficient_quota"),
            "out of credit. Please tell the bot's admin.",
        ),
    ],
)
def test_errors_users_meet_get_their_own_sentence(exc, expected):
    message = model_error_message(exc, "llama9")
    assert expected in message
    assert "maximum context length is" not in message  # never the provider's raw text


def test_only_tool_rejections_count_as_such():
    assert rejects_tools(status_error(*OLLAMA))
    assert rejects_tools(status_error(*VLLM))
    assert rejects_tools(status_error(*LLAMA_CPP))
    assert rejects_tools(status_error(500, "Unsupported param: tools"))
    assert not rejects_tools(status_error(400, "messages with role 'tool' must follow tool_calls"))
    assert not rejects_tools(status_error(404, "model does not support tools"))  # 404: the model


def test_the_context_window_setting_is_for_models_the_table_does_not_know():
    assert tokens.context_window("llama3.1:8b") == tokens.FALLBACK_CONTEXT
    assert tokens.context_window("llama3.1:8b", 32768) == 32768
    assert tokens.context_window("gpt-4o", 32768) == 128_000
    assert tokens.history_budget("llama3.1:8b", 12000, 4096) == 2048
    assert tokens.history_budget("llama3.1:8b", 12000, 131072) == 12000


async def test_the_service_trims_history_to_the_configured_window(
    make_chat, runner, tmp_path, fake_openai
):
    kept = {}
    for window in (2048, 65536):
        chat = make_chat(runner, tmp_path, default_model="local-llama", context_window=window)
        for i in range(4):
            fake_openai.add(reply(f"answer {i} " + "word " * 800))
            await chat.turn(f"u{window}", "c1", f"question {i}")
        sent = [m for m in fake_openai.requests[-1]["messages"] if m["role"] != "system"]
        kept[window] = len(sent)
    # half of 2048 holds none of the 800-word answers; half of 65536 (capped by the 12000
    # history setting) holds all three earlier turns
    assert kept == {2048: 1, 65536: 7}


def test_timeout_and_tools_come_from_the_settings(tmp_path):
    parts = Components(
        Settings(_env_file=None, data_dir=tmp_path, openai_timeout=600, openai_tools="OFF")
    )
    client = parts.model_client()
    assert client.timeout == 600
    assert Settings(_env_file=None, openai_tools="Off").openai_tools == "off"
