"""ChatService: one conversation turn, from the user's message to the answer. No discord here.

A turn: store the uploads, load and trim the history to the model's budget, call the model with
the `execute_python_code` tool, run each call in the sandbox and give the model the full result,
for a bounded number of rounds, then save the turn and return a value the bot (or the terminal
chat) renders. Every failure a user can meet becomes a short friendly sentence in the answer.
What a turn may cost (runs, sandbox seconds, upload bytes) is capped (app/chat/limits.py); images
for vision models are probed and encoded off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import openai
import structlog
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from app.chat import tokens
from app.chat.budget import DailyBudget
from app.chat.history import complete_prefix, flatten, shorten_tool_result
from app.chat.limits import TurnBudget, TurnLimits
from app.chat.messages import (
    TOOLS_UNAVAILABLE,
    describe_files,
    model_error_message,
    quoted,
    run_notice,
)
from app.chat.model_call import BudgetExceeded, ModelCaller, ToolSupport
from app.chat.pricing import PriceTable
from app.chat.rate_limit import ChatRateLimit
from app.chat.records import ChatRecords, DailyAmounts, Turn
from app.chat.run_files import run_inputs, store_outputs
from app.chat.tools import (
    TOOL_NAME,
    invalid_call,
    over_limit,
    parse_arguments,
    refused,
    tool_definitions,
    tool_result,
)
from app.chat.values import ChatAnswer, CodeRun, DeliveredFile, RunObserver, TurnFiles, Upload
from app.files import FileStore, FileStoreError, StoredFile, is_supported, scopes
from app.sandbox import RunRequest, RunStatus, SandboxService

log = structlog.get_logger(__name__)

MAX_SAVED_TURNS = 50
# What one image sent to a vision model may weigh (the providers' limit is about 20 MB).
VISION_MAX_BYTES = 20 * 1024**2
SYSTEM_PROMPT = (
    "You are a data analysis assistant in a chat. You can run Python code with the "
    f"`{TOOL_NAME}` tool; use it for any calculation, data work or chart instead of guessing. "
    "If the code fails, read the error, fix the code and run it again. Files the code writes to "
    "its working directory are attached to your answer automatically: mention them by name, do "
    "not paste their contents or links. Keep answers short; the chat shows Markdown."
)
# The files of the turn in progress: set by turn(), read where a run gets its inputs, so a run
# never sees a file of another scope (one task per turn, so one value per turn).
_turn_files: contextvars.ContextVar[TurnFiles | None] = contextvars.ContextVar(
    "turn_files", default=None
)
NO_FILES = TurnFiles(scopes.PRIVATE)


def current_files() -> TurnFiles:
    return _turn_files.get() or NO_FILES


class ChatService:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        runner: SandboxService,
        store: FileStore,
        records: ChatRecords,
        *,
        runs_dir: Path,
        default_model: str,
        allowed_models: Sequence[str] = (),
        vision_models: Sequence[str] = (),
        max_tool_rounds: int = 6,
        history_tokens: int = 12000,
        rate_limit: ChatRateLimit | None = None,
        prices: PriceTable | None = None,
        budget: DailyBudget | None = None,
        tools: ToolSupport | None = None,
        context_window: int | None = None,
        limits: TurnLimits | None = None,
    ) -> None:
        self.client = client
        self.runner = runner
        """The sandbox: this process's runner or a client of the sandbox service."""
        self.store = store
        self.records = records
        self.runs_dir = Path(runs_dir)
        """Where each run's outputs land before they are stored (DATA_DIR/runs/)."""
        self.default_model = default_model
        self.allowed_models = tuple(dict.fromkeys([default_model, *allowed_models]))
        self.vision_models = tuple(vision_models)
        self.max_tool_rounds = max_tool_rounds
        self.history_tokens = history_tokens
        self.rate_limit = rate_limit
        self.limits = limits or TurnLimits()
        self.prices = prices or PriceTable()
        self.budget = budget
        self.context_window = context_window
        """OPENAI_CONTEXT_WINDOW: the window of models the token table does not know."""
        self.calls = ModelCaller(client, records, self.prices, budget=budget, tools=tools)
        self._busy: set[str] = set()

    # Public API

    def is_busy(self, user_id: str) -> bool:
        return str(user_id) in self._busy

    async def model_for(self, user_id: str) -> str:
        chosen = await self.records.get_model(str(user_id))
        return chosen if chosen in self.allowed_models else self.default_model

    async def set_model(self, user_id: str, model: str) -> bool:
        if model not in self.allowed_models:
            return False
        await self.records.set_model(str(user_id), model)
        return True

    async def reset(self, user_id: str, channel_id: str) -> bool:
        return await self.records.clear(str(user_id), str(channel_id))

    def supports_vision(self, model: str) -> bool:
        return any(model.startswith(prefix) for prefix in self.vision_models)

    async def turn(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        uploads: Sequence[Upload] = (),
        observer: RunObserver | None = None,
        scope: str = scopes.PRIVATE,
    ) -> ChatAnswer:
        """One turn of the conversation (user, channel). `scope` is where it happens
        (app/files/scopes.py): uploads and outputs get it, and only its files are used."""
        user_id, channel_id = str(user_id), str(channel_id)
        if user_id in self._busy:
            return ChatAnswer(error="I am still working on your previous message; one at a time.")
        if self.rate_limit is not None:
            wait = self.rate_limit.check(user_id)
            if wait:
                return ChatAnswer(
                    error=f"You are sending messages too fast. Try again in {wait:.0f} s."
                )
        if self.budget is not None and text.strip():
            refusal = await self.budget.turn_refusal(user_id)
            if refusal:
                return ChatAnswer(error=refusal)
        self._busy.add(user_id)
        try:
            with structlog.contextvars.bound_contextvars(user_id=user_id):
                token = _turn_files.set(TurnFiles(scope))
                try:
                    return await self._turn(user_id, channel_id, text, uploads, observer)
                finally:
                    _turn_files.reset(token)
        finally:
            self._busy.discard(user_id)

    # Steps

    async def _turn(self, user_id, channel_id, text, uploads, observer) -> ChatAnswer:
        model = await self.model_for(user_id)
        answer = ChatAnswer(model=model)
        limits = TurnBudget(self.limits)  # what this turn may still cost
        vision = self.supports_vision(model)
        images: list[tuple[StoredFile, bytes]] = []
        for upload in uploads:
            stored = await self._store_upload(user_id, upload, answer, limits)
            if stored is None:
                continue
            answer.stored_uploads.append(stored)
            if vision and stored.category == "image":
                if len(upload.data) <= VISION_MAX_BYTES:
                    images.append((stored, upload.data))
                else:
                    answer.notices.append(
                        f"{stored.name}: too large to show to the model; stored as file "
                        f"{stored.file_id}."
                    )
        if not text.strip():
            if answer.stored_uploads:
                names = ", ".join(f"{f.name} (id {f.file_id})" for f in answer.stored_uploads)
                answer.text = f"Stored {names}. Ask me anything about it."  # the user's own
            elif not answer.notices:
                answer.text = "Ask me something, or attach a file to work with."
            return answer

        user_text = text.strip()
        if answer.stored_uploads:
            listed = ", ".join(f"{quoted(f.name)} (id {f.file_id})" for f in answer.stored_uploads)
            user_text += f"\n\n[Attached and stored: {listed}]"
        history_message = {"role": "user", "content": user_text}
        request_message, image_tokens = await asyncio.to_thread(
            self._with_images, history_message, images
        )
        new_turn: Turn = [history_message]

        await tokens.prepare(model)  # tiktoken's files load off the event loop
        turns = await self.records.load_turns(user_id, channel_id)
        visible = await self._turn_files(user_id, text)
        system = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "system", "content": describe_files(visible, current_files().scope)},
        ]
        fixed = sum(tokens.count_message(m, model) for m in system)
        fixed += tokens.count_text(user_text, model) + image_tokens
        kept = self._trim(turns, model, fixed)
        messages = [*system, *flatten(kept), request_message]
        interrupted = False
        if self.calls.tools.learned_chat_only(model):
            answer.notices.append(TOOLS_UNAVAILABLE)
        try:
            await self._converse(user_id, model, messages, new_turn, answer, observer, limits)
        except BudgetExceeded as exc:
            if answer.runs:  # stopped mid-answer: what was made is still delivered
                answer.text = str(exc)
            else:
                answer.error = str(exc)
        except openai.OpenAIError as exc:
            # The provider's text can quote the key: the log gets its status and code only.
            log.warning(
                "model call failed",
                error_type=type(exc).__name__,
                status=getattr(exc, "status_code", None),
                code=getattr(exc, "code", None),
            )
            answer.error = model_error_message(exc, model)
        except asyncio.CancelledError:
            interrupted = True  # shutdown: keep what was asked and done so far
            raise
        finally:
            saved = complete_prefix(new_turn)
            if len(saved) > 1 or interrupted:  # a failed model call leaves nothing to remember
                saved = [shorten_tool_result(m) for m in saved]
                if saved[-1].get("role") != "assistant" or saved[-1].get("tool_calls"):
                    saved.append({"role": "assistant", "content": "(interrupted)"})
                await asyncio.shield(
                    self.records.save_turns(
                        user_id, channel_id, (turns + [saved])[-MAX_SAVED_TURNS:]
                    )
                )
        return answer

    async def _store_upload(self, user_id: str, upload: Upload, answer: ChatAnswer, limits):
        if upload.refused:
            answer.notices.append(f"{upload.filename}: {upload.refused}")
            return None
        over = limits.refuse_upload(len(upload.data))
        if over:
            answer.notices.append(f"{upload.filename}: {over}")
            return None
        if not is_supported(upload.filename):
            answer.notices.append(f"{upload.filename}: this file type is not supported.")
            return None
        try:
            scope = current_files().scope
            return await self.store.save(user_id, upload.filename, upload.data, scope=scope)
        except FileStoreError as exc:
            answer.notices.append(f"{upload.filename}: {exc}")
            return None

    async def _turn_files(self, user_id: str, text: str) -> list[StoredFile]:
        """The files this turn may use: its scope's, and those the user named by id (a
        deliberate use elsewhere). What the model is shown is what its runs get, plus the
        files those runs produce."""
        try:
            files = await self.store.list(user_id)
        except FileStoreError:
            files = []
        scope = current_files().scope
        named = scopes.named_ids(text)
        visible = [f for f in files if f.scope == scope or f.file_id in named]
        _turn_files.set(TurnFiles(scope, frozenset(f.file_id for f in visible)))
        return visible

    @staticmethod
    def _with_images(message: dict, images) -> tuple[dict, int]:
        """The request's user message with its images, and their token estimate. Blocking (the
        header probe and base64 of up to VISION_MAX_BYTES each): run in a thread."""
        if not images:
            return message, 0
        parts: list[dict] = [{"type": "text", "text": message["content"]}]
        estimate = 0
        for stored, data in images:
            estimate += tokens.image_tokens(*tokens.image_size(data))
            mime = "image/jpeg" if stored.type in ("jpg", "jpeg") else f"image/{stored.type}"
            encoded = base64.b64encode(data).decode("ascii")
            parts.append(
                {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{encoded}"}}
            )
        return {"role": "user", "content": parts}, estimate

    def _trim(self, turns: list[Turn], model: str, fixed: int) -> list[Turn]:
        """The newest whole turns that fit the model's history budget next to the new message."""
        budget = tokens.history_budget(model, self.history_tokens, self.context_window) - fixed
        kept: list[Turn] = []
        for turn in reversed(turns):
            cost = sum(tokens.count_message(m, model) for m in turn)
            if cost > budget:
                break
            budget -= cost
            kept.append(turn)
        return kept[::-1]

    async def _converse(self, user_id, model, messages, new_turn, answer, observer, limits):
        tools = tool_definitions(self.runner.max_timeout, self.limits.describe())
        for round_number in range(self.max_tool_rounds + 1):
            offer_tools = round_number < self.max_tool_rounds and self.calls.tools.offers(model)
            response = await self.calls.complete(
                user_id, model, messages, tools if offer_tools else None, answer
            )
            offer_tools = offer_tools and self.calls.tools.offers(model)  # may have just learned
            choice = response.choices[0].message
            # Only function tools are offered; another kind of call has nothing to run.
            calls = [
                call
                for call in (choice.tool_calls or () if offer_tools else ())
                if isinstance(call, ChatCompletionMessageFunctionToolCall)
            ]
            if not calls:
                answer.text = (choice.content or "").strip()
                final = {"role": "assistant", "content": answer.text}
                messages.append(final)
                new_turn.append(final)
                return
            assistant = {
                "role": "assistant",
                "content": choice.content or None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": call.function.arguments,
                        },
                    }
                    for call in calls
                ],
            }
            messages.append(assistant)
            new_turn.append(assistant)
            for call in calls:  # parallel calls count one by one
                content = await self._tool_call(user_id, call, answer, observer, limits)
                reply = {"role": "tool", "tool_call_id": call.id, "content": content}
                messages.append(reply)
                new_turn.append(reply)

    async def _tool_call(self, user_id, call, answer: ChatAnswer, observer, limits) -> str:
        over = limits.refuse_call()
        if over:
            return over_limit(over)
        if call.function.name != TOOL_NAME:
            return invalid_call(f"there is no tool named {call.function.name!r}; use {TOOL_NAME}")
        try:
            code, timeout = parse_arguments(call.function.arguments)
        except ValueError as exc:
            return invalid_call(str(exc))
        timeout = limits.timeout_for(timeout, self.runner.max_timeout)
        reservation = None
        if self.budget is not None:
            reservation, note = await self.budget.run_allowance(user_id, timeout)
            if note and note not in answer.notices:
                answer.notices.append(note)
            if reservation is None:
                return refused("the user's code execution time for today is used up")
            timeout = reservation.amounts.seconds
        used = 0.0
        try:
            result, delivered = await self._run_code(user_id, code, timeout, observer)
            used = result.exec_seconds
        finally:
            limits.sandbox_seconds += used
            if self.budget is not None:
                await asyncio.shield(self.budget.settle(reservation, DailyAmounts(seconds=used)))
        answer.runs.append(CodeRun(code=code, result=result, files=delivered))
        notice = run_notice(result)
        if notice and notice not in answer.notices:
            answer.notices.append(notice)
        return tool_result(result)

    async def _run_code(self, user_id, code, timeout, observer):
        run_id = uuid.uuid4().hex
        output_dir = self.runs_dir / run_id
        link_dir = self.runs_dir / f"{run_id}-inputs"
        allowed = current_files()
        try:
            input_dir, files = await run_inputs(
                self.store, user_id, only=allowed.file_ids, link_dir=link_dir
            )
            request = RunRequest(
                code=code,
                user_id=user_id,
                output_dir=output_dir,
                input_dir=input_dir if files else None,
                files=files,
                timeout=timeout,
            )
            if observer is not None:
                observer.run_started(code)
            result = await self.runner.run(
                request, on_queued=observer.run_queued if observer else None
            )
            if observer is not None:
                await observer.run_finished(result)
            if result.status is RunStatus.SANDBOX_ERROR:
                log.warning("sandbox unavailable", message=result.message)
            delivered: list[DeliveredFile] = []
            if result.files:
                try:
                    result = await store_outputs(self.store, user_id, result, allowed.scope)
                except FileStoreError as exc:
                    log.warning("outputs not stored", error=str(exc))
                made = {f.file_id for f in result.files if f.file_id}
                _turn_files.set(TurnFiles(allowed.scope, allowed.file_ids | made))
                for produced in result.files:
                    stored = (
                        await self.store.get(user_id, produced.file_id)
                        if produced.file_id
                        else None
                    )
                    if stored is not None:
                        delivered.append(
                            DeliveredFile(
                                name=stored.name,
                                path=self.store.absolute_path(stored),
                                size=stored.size,
                                file_id=stored.file_id,
                            )
                        )
            return result, tuple(delivered)
        finally:
            shutil.rmtree(output_dir, ignore_errors=True)
            shutil.rmtree(link_dir, ignore_errors=True)
