"""ChatService: one conversation turn, from the user's message to the answer. No discord here.

A turn: store the uploads, load and trim the history to the model's budget, call the model with
the `execute_python_code` tool (streamed: the observer hears the text as it comes), run each call
in the sandbox and give the model the full result, for a bounded number of rounds, then save the
turn and return a value the bot (or the terminal chat) renders. Every failure a user can meet
becomes a short friendly sentence in the answer. A stored run can be run again (`rerun`) or
shown (`run_codes`) by its turn id and number. What a turn may cost (runs, sandbox seconds,
upload bytes) is capped (app/chat/limits.py); images for vision models are probed and encoded
off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import openai
import structlog

from app.chat import tokens
from app.chat.budget import DailyBudget
from app.chat.history import (
    complete_prefix,
    flatten,
    run_arguments,
    turn_to_keep,
    unique_call_ids,
)
from app.chat.limits import TurnBudget, TurnLimits
from app.chat.messages import (
    TOOLS_UNAVAILABLE,
    describe_files,
    model_error_message,
    run_notice,
    user_message_text,
)
from app.chat.model_call import BudgetExceeded, ModelCaller, ToolSupport
from app.chat.outage import HISTORY_UNREAD, TURN_NOT_SAVED, or_default, or_tell, stopped
from app.chat.pricing import PriceTable
from app.chat.rate_limit import ChatRateLimit
from app.chat.records import ChatRecords, RecordsUnavailable, Turn
from app.chat.runs import (
    RUN_REFUSED,
    CodeRuns,
    current_files,
    reset_files,
    session_name,
    turn_files,
    use_files,
)
from app.chat.streaming import ToolCall
from app.chat.tools import (
    TOOL_NAME,
    ToolEnvironment,
    invalid_call,
    over_limit,
    parse_arguments,
    refused,
    system_prompt,
    tool_definitions,
    tool_result,
)
from app.chat.uploads import store_upload, vision_mime, with_images
from app.chat.values import (
    ChatAnswer,
    ReplyContext,
    TurnEvents,
    TurnFiles,
    TurnObserver,
    Upload,
    new_turn_id,
)
from app.files import FileStore, scopes
from app.sandbox import SandboxService

log = structlog.get_logger(__name__)

MAX_SAVED_TURNS = 50
BUSY = "I am still working on your previous message; one at a time."
RUN_GONE = (
    "That run is no longer in this conversation's history (it was cleared with /reset or "
    "trimmed), so it cannot be run again."
)


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
        vision_max_bytes: int = 10 * 1024**2,
        max_tool_rounds: int = 6,
        history_tokens: int = 12000,
        rate_limit: ChatRateLimit | None = None,
        prices: PriceTable | None = None,
        budget: DailyBudget | None = None,
        tools: ToolSupport | None = None,
        context_window: int | None = None,
        stream: bool = True,
        limits: TurnLimits | None = None,
        session_suffix: str = "",
    ) -> None:
        self.client = client
        self.session_suffix = session_suffix
        self.runner = runner
        """The sandbox: this process's runner or a client of the sandbox service."""
        self.store = store
        self.records = records
        self.runs_dir = Path(runs_dir)
        """Where each run's outputs land before they are stored (DATA_DIR/runs/)."""
        self.default_model = default_model
        self.allowed_models = tuple(dict.fromkeys([default_model, *allowed_models]))
        self.vision_models = tuple(vision_models)
        self.vision_max_bytes = vision_max_bytes
        self.max_tool_rounds = max_tool_rounds
        self.history_tokens = history_tokens
        self.rate_limit = rate_limit
        self.prices = prices or PriceTable()
        self.budget = budget
        self.limits = limits or TurnLimits()
        self.context_window = context_window
        """OPENAI_CONTEXT_WINDOW: the window of models the token table does not know."""
        self.code_runs = CodeRuns(runner, store, self.runs_dir, budget)
        self.environment = ToolEnvironment(runner)
        self.calls = ModelCaller(
            client, records, self.prices, budget=budget, tools=tools, stream=stream
        )
        self._busy: set[str] = set()

    # Public API

    def is_busy(self, user_id: str) -> bool:
        return str(user_id) in self._busy

    async def model_for(self, user_id: str) -> str:
        chosen = await or_default(self.records.get_model(str(user_id)), None)
        return chosen if chosen in self.allowed_models else self.default_model

    async def set_model(self, user_id: str, model: str) -> bool:
        if model not in self.allowed_models:
            return False
        await self.records.set_model(str(user_id), model)
        return True

    async def reset(self, user_id: str, channel_id: str) -> bool:
        """Forget the conversation: its history and its runs' session state."""
        session = session_name(str(channel_id), self.session_suffix)
        had_state = await self.runner.reset_session(str(user_id), session)
        return await self.records.clear(str(user_id), str(channel_id)) or had_state

    def supports_vision(self, model: str) -> bool:
        return any(model.startswith(prefix) for prefix in self.vision_models)

    async def turn(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        uploads: Sequence[Upload] = (),
        observer: TurnObserver | None = None,
        *,
        reply_to: ReplyContext | None = None,
        turn_id: str | None = None,
        scope: str = scopes.PRIVATE,
    ) -> ChatAnswer:
        """Answer one message. `turn_id` (new_turn_id()) lets the caller name the turn first.
        `scope` is where it happens (app/files/scopes.py): uploads and outputs get it, and only
        its files are used."""
        user_id, channel_id = str(user_id), str(channel_id)
        events = observer or TurnEvents()
        asks_model = bool(text.strip()) or reply_to is not None
        return await self._guarded(
            user_id,
            TurnFiles(scope, session=session_name(channel_id, self.session_suffix)),
            lambda: self._turn(
                user_id, channel_id, text, uploads, events, reply_to, turn_id or new_turn_id()
            ),
            asks_model=asks_model,
        )

    async def rerun(
        self,
        user_id: str,
        channel_id: str,
        turn_id: str,
        number: int,
        observer: TurnObserver | None = None,
        scope: str = scopes.PRIVATE,
    ) -> ChatAnswer:
        """Run a stored run's code again in a fresh sandbox with the user's current files (of
        the scope, and those the turn's question named by id).

        The model is not asked and the conversation history is not changed; the files the run
        writes are stored for the user as any run's are, and its seconds count against the
        daily budget.
        """
        user_id, channel_id = str(user_id), str(channel_id)
        events = observer or TurnEvents()

        async def again() -> ChatAnswer:
            turn = await self.records.find_turn(user_id, channel_id, turn_id)
            found = run_arguments(turn, number) if turn is not None else None
            if turn is None or found is None:
                return ChatAnswer(error=RUN_GONE, turn_id=turn_id)
            question = turn.messages[0].get("content") if turn.messages else ""
            await turn_files(self.store, user_id, question if isinstance(question, str) else "")
            answer = ChatAnswer(turn_id=turn_id)
            code, timeout = found
            run = await self.code_runs.run(user_id, code, timeout, number, events, answer)
            if run is None:
                answer.error = answer.notices.pop() if answer.notices else RUN_REFUSED
                return answer
            answer.runs.append(run)
            notice = run_notice(run.result)
            if notice:
                answer.notices.append(notice)
            return answer

        files = TurnFiles(scope, session=session_name(channel_id, self.session_suffix))
        return await self._guarded(user_id, files, again)

    async def find_run(
        self, user_id: str, channel_id: str, turn_id: str, number: int
    ) -> tuple[str, float | None] | None:
        """(code, timeout) of run `number` of a stored turn; None when it is not in the history."""
        turn = await self.records.find_turn(str(user_id), str(channel_id), turn_id)
        return run_arguments(turn, number) if turn is not None else None

    async def run_codes(self, user_id: str, channel_id: str, turn_id: str) -> list[tuple[int, str]]:
        """(number, code) of every run of a stored turn that is still in the history."""
        turn = await self.records.find_turn(str(user_id), str(channel_id), turn_id)
        if turn is None:
            return []
        found = [(n, run_arguments(turn, n)) for n in range(1, len(turn.runs) + 1)]
        return [(n, args[0]) for n, args in found if args is not None]

    # Steps

    async def _guarded(
        self,
        user_id: str,
        files: TurnFiles,
        work: Callable[[], Awaitable[ChatAnswer]],
        *,
        asks_model: bool = False,
    ) -> ChatAnswer:
        """One turn or re-run per user at a time, within the rate limit and today's budget,
        with the files of its scope and its conversation's session."""
        if user_id in self._busy:
            return ChatAnswer(error=BUSY)
        if self.rate_limit is not None:
            wait = self.rate_limit.check(user_id)
            if wait:
                return ChatAnswer(
                    error=f"You are sending messages too fast. Try again in {wait:.0f} s."
                )
        if self.budget is not None and asks_model:
            refusal = await self.budget.turn_refusal(user_id)
            if refusal:
                return ChatAnswer(error=refusal)
        self._busy.add(user_id)
        try:
            with structlog.contextvars.bound_contextvars(user_id=user_id):
                token = use_files(files)
                try:
                    return await work()
                finally:
                    reset_files(token)
        finally:
            self._busy.discard(user_id)

    async def _turn(
        self, user_id, channel_id, text, uploads, observer, reply_to, turn_id
    ) -> ChatAnswer:
        model = await self.model_for(user_id)
        answer = ChatAnswer(model=model, turn_id=turn_id)
        limits = TurnBudget(self.limits)  # what this turn may still cost
        vision = self.supports_vision(model)
        images: list[tuple[str, bytes]] = []
        for upload in uploads:
            stored = await store_upload(
                self.store, user_id, upload, answer, current_files().scope, limits
            )
            if stored is None:
                continue
            if stored not in answer.stored_uploads:
                answer.stored_uploads.append(stored)
            mime = vision_mime(stored, self.vision_max_bytes) if vision else None
            if mime is not None:
                images.append((mime, upload.data))
        if not text.strip() and reply_to is None:
            if answer.stored_uploads:
                names = ", ".join(f"{f.name} (id {f.file_id})" for f in answer.stored_uploads)
                answer.text = f"Stored {names}. Ask me anything about it."  # the user's own
            elif not answer.notices:
                answer.text = "Ask me something, or attach a file to work with."
            return answer

        user_text = user_message_text(text, answer.stored_uploads, reply_to)
        history_message = {"role": "user", "content": user_text}
        # The header probe and base64 of several images would hold the event loop.
        request_message, image_tokens = await asyncio.to_thread(
            with_images, history_message, images
        )
        turn = Turn(messages=[history_message], id=turn_id)

        await tokens.prepare(model)  # tiktoken's files load off the event loop
        loading = self.records.load_turns(user_id, channel_id)
        turns = await or_tell(loading, answer, HISTORY_UNREAD, [])
        visible = await turn_files(self.store, user_id, text)
        system = [
            {"role": "system", "content": system_prompt(await self.environment.get())},
            {"role": "system", "content": describe_files(visible, current_files().scope)},
        ]
        fixed = sum(tokens.count_message(m, model) for m in system)
        fixed += tokens.count_text(user_text, model) + image_tokens
        kept = self._trim(turns, model, fixed)
        answer.trimmed_turns = len(turns) - len(kept)
        messages = [*system, *flatten(kept), request_message]
        interrupted = False
        if self.calls.tools.learned_chat_only(model):
            answer.notices.append(TOOLS_UNAVAILABLE)
        try:
            await self._converse(user_id, model, messages, turn, answer, observer, limits)
        except RecordsUnavailable as exc:
            stopped(answer, exc)
        except BudgetExceeded as exc:
            if answer.runs:  # stopped mid-answer: what was made is still delivered
                answer.text = "\n\n".join(p for p in (answer.text, str(exc)) if p)
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
            interrupted = True  # Stop or shutdown: keep what was asked and done so far
            raise
        finally:
            saved = complete_prefix(turn.messages)
            if len(saved) > 1 or interrupted:  # a failed model call leaves nothing to remember
                keep = (turns + [turn_to_keep(turn, saved)])[-MAX_SAVED_TURNS:]
                saving = self.records.save_turns(user_id, channel_id, keep)
                await asyncio.shield(or_tell(saving, answer, TURN_NOT_SAVED, None))
        return answer

    def _trim(self, turns: list[Turn], model: str, fixed: int) -> list[Turn]:
        """The newest whole turns that fit the model's history budget next to the new message."""
        budget = tokens.history_budget(model, self.history_tokens, self.context_window) - fixed
        kept: list[Turn] = []
        for turn in reversed(turns):
            cost = sum(tokens.count_message(m, model) for m in turn.messages)
            if cost > budget:
                break
            budget -= cost
            kept.append(turn)
        return kept[::-1]

    async def _converse(
        self, user_id, model, messages, turn: Turn, answer, observer, limits: TurnBudget
    ) -> None:
        environment = await self.environment.get()
        tools = tool_definitions(self.runner.max_timeout, self.limits.describe(), environment)
        texts: list[str] = []
        for round_number in range(self.max_tool_rounds + 1):
            offer_tools = round_number < self.max_tool_rounds and self.calls.tools.offers(model)
            observer.model_started()
            reply = await self.calls.complete(
                user_id,
                model,
                messages,
                tools if offer_tools else None,
                answer,
                on_text=observer.text_delta,
            )
            offer_tools = offer_tools and self.calls.tools.offers(model)  # may have just learned
            # Text before a tool call ("let me compute that") is part of what the user reads.
            if reply.content.strip():
                texts.append(reply.content.strip())
                answer.text = "\n\n".join(texts)
            calls = unique_call_ids(turn, reply.tool_calls) if offer_tools else []
            if not calls:
                final = {"role": "assistant", "content": reply.content.strip()}
                messages.append(final)
                turn.messages.append(final)
                return
            assistant = {
                "role": "assistant",
                "content": reply.content or None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in calls
                ],
            }
            messages.append(assistant)
            turn.messages.append(assistant)
            for call in calls:  # parallel calls count one by one
                content = await self._tool_call(user_id, call, turn, answer, observer, limits)
                reply_message = {"role": "tool", "tool_call_id": call.id, "content": content}
                messages.append(reply_message)
                turn.messages.append(reply_message)

    async def _tool_call(
        self, user_id, call: ToolCall, turn: Turn, answer, observer, limits: TurnBudget
    ) -> str:
        over = limits.refuse_call()
        if over:
            return over_limit(over)
        if call.name != TOOL_NAME:
            return invalid_call(f"there is no tool named {call.name!r}; use {TOOL_NAME}")
        try:
            code, timeout = parse_arguments(call.arguments)
        except ValueError as exc:
            return invalid_call(str(exc))
        timeout = limits.timeout_for(timeout, self.runner.max_timeout)
        run = await self.code_runs.run(
            user_id, code, timeout, len(turn.runs) + 1, observer, answer, turn.runs, call.id
        )
        if run is None:
            return refused(RUN_REFUSED)
        limits.sandbox_seconds += run.result.exec_seconds
        answer.runs.append(run)
        notice = run_notice(run.result)
        if notice and notice not in answer.notices:
            answer.notices.append(notice)
        return tool_result(run.result)
