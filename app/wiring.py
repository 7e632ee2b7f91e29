"""The composition root: the one place that builds a process's objects from its settings.

    Settings -> DataLayout, SandboxPolicy (once; the owner token is a policy field)
             -> engine -> package installer, warm pool, run slots -> SandboxRunner
             -> the SandboxService: that runner, or a SandboxClient when SANDBOX_SERVICE_URL is set
             -> the store: MongoDB (MONGODB_URI) or the embedded SQLite file under DATA_DIR
             -> file store (its metadata repository) -> chat records, model client -> ChatService
             -> CleanupService
    `sandboxd`: the runner -> SandboxServer (SANDBOXD_LISTEN), with its own housekeeping

A `Components` object builds each part on first use, so a command asks only for what it needs
(`files list` never touches Docker; `image hash` builds nothing). The CLI verbs and the bot take
their parts from it; tests build it with an engine or a repository of their own.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import openai
import structlog

from app.chat import ChatRateLimit, ChatRecords, ChatService, MemoryChatRecords, TurnLimits
from app.chat.budget import DailyBudget
from app.chat.model_call import ToolSupport
from app.chat.pricing import price_table
from app.chat.records import DailyLimits
from app.config import Settings
from app.database import EmbeddedDatabase
from app.files import (
    CleanupService,
    FileRepository,
    FileStore,
    RepositoryUnavailable,
    StorageUnavailable,
)
from app.host_paths import in_container, mounted_host_path
from app.layout import DataLayout
from app.sandbox import (
    Engine,
    PackageCache,
    PackageCatalog,
    PackageInstaller,
    RunSlots,
    SandboxPolicy,
    SandboxRunner,
    SandboxService,
    WarmPool,
)
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.leftovers import owner_token
from app.sandbox.sessions import SessionStates
from app.sandboxd import RunLimits, SandboxClient, SandboxServer, ServiceAddress

log = structlog.get_logger(__name__)


class WiringError(RuntimeError):
    """A dependency cannot be built; str() is one readable line."""


def sandbox_policy(settings: Settings, owner: str = "") -> SandboxPolicy:
    """Every container setting, from the settings: the one policy of a process."""
    return SandboxPolicy(
        image=settings.sandbox_image,
        instance=settings.sandbox_instance,
        runtime=settings.sandbox_runtime,
        memory_bytes=settings.sandbox_memory,
        cpus=settings.sandbox_cpus,
        pids_limit=settings.sandbox_pids_limit,
        tmp_size_bytes=settings.sandbox_tmp_size,
        output_size_bytes=settings.sandbox_output_size,
        max_stream_bytes=settings.sandbox_max_output_bytes,
        max_output_files=settings.sandbox_max_output_files,
        max_code_bytes=settings.sandbox_max_code_bytes,
        code_uid_first=settings.code_uids[0],
        code_uid_last=settings.code_uids[1],
        data_dir=settings.data_dir,
        host_data_dir=settings.host_data_dir,
        hosts_file=DataLayout(settings.data_dir).sandbox_hosts,
        install_timeout=settings.package_install_timeout,
        # A warm container is recycled at its max age (checked every few seconds): past that
        # and a margin it is nobody's, and its warden ends it.
        idle_life=settings.sandbox_warm_pool_max_age + 120.0,
        package_index_url=settings.sandbox_pip_index_url,
        package_extra_index_url=settings.sandbox_pip_extra_index_url,
        package_proxy=settings.package_proxy,
        warm_preload=tuple(name for name in settings.sandbox_warm_preload.split(",") if name),
        warm_defer=tuple(name for name in settings.sandbox_warm_defer.split(",") if name),
        state_max_bytes=settings.session_state_max_bytes if settings.session_state else 0,
        state_seconds=settings.session_state_timeout,
        owner=owner,
    )


def package_catalog(settings: Settings) -> PackageCatalog:
    return PackageCatalog.build(settings.approved_packages, settings.package_import_mapping)


def build_runner(settings: Settings, engine: Engine | None = None) -> SandboxRunner:
    """A runner with its pool and installer, as every entry point gets it (tests, bench)."""
    return Components(settings, engine=engine).runner


class Components:
    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        repository: FileRepository | None = None,
        owner: str | None = None,
    ) -> None:
        """`owner`: the token labelled on this process's containers (default: its own, as
        app/sandbox/leftovers.owner_token makes it; sandboxd marks its own as a service's)."""
        self.settings = settings
        self._owner = owner
        self._engine = engine
        self._owns_engine = engine is None
        self._repository = repository
        self._store: FileStore | None = None

    # Sandbox side

    @cached_property
    def layout(self) -> DataLayout:
        return DataLayout(self.settings.data_dir)

    @cached_property
    def policy(self) -> SandboxPolicy:
        settings = self.settings
        if settings.host_data_dir is None and self._owns_engine and in_container():
            # In a container (the compose `sandbox` service, a Swarm task) DATA_DIR is a mount:
            # its host path comes from the engine unless HOST_DATA_DIR names it.
            found = mounted_host_path(self.docker, settings.data_dir)
            if found is not None:
                log.info("HOST_DATA_DIR found from this container's mounts", path=str(found))
                settings = settings.model_copy(update={"host_data_dir": found})
        return sandbox_policy(settings, owner=self._owner or owner_token())

    @cached_property
    def engine(self) -> Engine:
        if self._engine is None:
            # A run holds a thread for its exec step; removals and pool starts need some more.
            self._engine = DockerEngine(
                max_workers=self.settings.sandbox_max_concurrent_runs * 3 + 4
            )
        return self._engine

    @cached_property
    def docker(self) -> DockerEngine:
        """The concrete engine, for the admin tools (image inspection, builds, audit)."""
        engine = self.engine
        if not isinstance(engine, DockerEngine):
            raise WiringError("this command needs the Docker engine itself")
        return engine

    @cached_property
    def installer(self) -> PackageInstaller:
        """The package install step and cache (also for `packages` and `doctor`)."""
        return PackageInstaller(
            self.policy,
            self.engine,
            PackageCache(self.layout.packages),
            package_catalog(self.settings),
            ca_bundle=self.settings.package_ca_bundle,
            max_per_run=self.settings.package_max_per_run,
            max_per_user_day=self.settings.package_max_per_user_day,
        )

    @cached_property
    def pool(self) -> WarmPool | None:
        if self.settings.sandbox_warm_pool_size <= 0:
            return None
        return WarmPool(
            self.policy,
            self.engine,
            size=self.settings.sandbox_warm_pool_size,
            max_age=self.settings.sandbox_warm_pool_max_age,
            staging_root=self.layout.pool,
            max_size=self.settings.sandbox_warm_pool_max,
            memory_budget=int(self.settings.sandbox_warm_pool_memory),
        )

    @cached_property
    def runner(self) -> SandboxRunner:
        """The runner every entry point uses. The warm pool runs only once `await
        runner.start()` is called (long-lived processes); a one-shot command that just calls
        `run()` starts every run cold and removes it inline."""
        return SandboxRunner(
            self.policy,
            self.engine,
            max_timeout=self.settings.code_execution_timeout,
            slots=RunSlots(self.settings.sandbox_max_concurrent_runs),
            packages=self.installer if self.settings.package_auto_install else None,
            pool=self.pool,
            sessions=SessionStates(self.layout.sessions, self.settings.session_state_max_bytes),
        )

    @property
    def uses_service(self) -> bool:
        """Whether runs go to a sandbox service (SANDBOX_SERVICE_URL) instead of this process."""
        return bool(self.settings.sandbox_service_url)

    @cached_property
    def sandbox(self) -> SandboxService:
        """What the chat, `run`, `doctor` and the bot run code with: this process's runner, or a
        client of the sandbox service, which then holds the only Docker access."""
        if not self.uses_service:
            return self.runner
        return self.sandbox_client(ServiceAddress.parse(self.settings.sandbox_service_url))

    def sandbox_client(self, address: ServiceAddress) -> SandboxClient:
        settings = self.settings
        token = settings.sandbox_service_token
        return SandboxClient(
            address,
            token=token.get_secret_value() if token else None,
            max_timeout=settings.code_execution_timeout,
            # Waiting for a slot, package installs, the run and its collection: a run that takes
            # longer than this has a service that no longer works.
            run_deadline=2 * settings.code_execution_timeout
            + settings.package_install_timeout
            + 600,
            max_output_files=settings.sandbox_max_output_files,
            max_output_bytes=settings.sandbox_output_size,
        )

    async def reap_leftovers(self) -> None:
        """A one-shot command's start: this process's runner reaps its instance's leftovers; a
        sandbox service does its own."""
        if not self.uses_service:
            await self.runner.reap_leftovers()

    def service_address(self) -> ServiceAddress:
        """Where `sandboxd` listens: SANDBOXD_LISTEN, else DATA_DIR's socket (app/layout.py)."""
        listen = self.settings.sandboxd_listen or f"unix://{self.layout.service_socket.resolve()}"
        return ServiceAddress.parse(listen)

    def sandbox_server(self) -> SandboxServer:
        """The sandbox service around this process's runner (see `python -m app sandboxd`)."""
        settings = self.settings
        token = settings.sandbox_service_token
        limits = RunLimits(
            max_code_bytes=self.policy.max_code_bytes,
            max_timeout=settings.code_execution_timeout,
            max_files=settings.max_files_per_user,
            max_file_bytes=int(settings.max_file_size_mb * 1024**2),
        )
        housekeeping = CleanupService(
            None,
            self.runner,
            layout=self.layout,
            package_cache_days=settings.package_cache_days,
            session_hours=settings.file_expiration_hours,
        )
        return SandboxServer(
            self.runner,
            limits,
            address=self.service_address(),
            staging=self.layout.staging,
            token=token.get_secret_value() if token else None,
            housekeeping=lambda: housekeeping.run_periodically(settings.cleanup_interval_minutes),
        )

    # Files and chat

    @property
    def uses_mongodb(self) -> bool:
        return self.settings.mongodb_uri is not None

    @property
    def store_description(self) -> str:
        """Which store keeps metadata, conversations and usage, for the start-up log."""
        if self._repository is not None:
            return self._repository.description or type(self._repository).__name__
        if self.uses_mongodb:
            return f"MongoDB (database {self.settings.mongodb_database})"
        return f"SQLite ({self.layout.database})"

    @cached_property
    def database(self) -> EmbeddedDatabase:
        """The embedded store without MONGODB_URI: one SQLite file under DATA_DIR."""
        return EmbeddedDatabase(self.layout.database)

    def _file_repository(self) -> FileRepository:
        if self._repository is not None:
            return self._repository
        if self.settings.mongodb_uri is not None:
            from app.files import mongo  # motor only when MongoDB is configured

            uri = self.settings.mongodb_uri.get_secret_value()
            return mongo.connect(uri, self.settings.mongodb_database)
        from app.files.sqlite import SqliteFileRepository

        return SqliteFileRepository(self.database)

    async def file_store(self, scratch_dir: Path | None = None) -> FileStore:
        """The user file store, its repository checked and indexed; StorageUnavailable when
        the store does not answer.

        MongoDB when MONGODB_URI is set, else the embedded SQLite file under DATA_DIR. With a
        repository given that keeps metadata in memory (tests), `scratch_dir`, when given, holds
        the files too, so a session leaves nothing behind that no metadata describes.
        """
        if self._store is not None:
            return self._store
        repo = self._file_repository()
        try:
            await repo.ensure_ready()
        except RepositoryUnavailable as exc:
            await repo.close()
            raise StorageUnavailable(str(exc)) from None
        root = self.layout.root
        if not repo.persistent and scratch_dir is not None:
            root = scratch_dir
        settings = self.settings
        self._store = FileStore(
            root,
            repo,
            max_file_bytes=int(settings.max_file_size_mb * 1024**2),
            max_files_per_user=settings.max_files_per_user,
            expiration_hours=settings.file_expiration_hours,
        )
        return self._store

    @cached_property
    def records(self) -> ChatRecords:
        """Conversations, model choices, usage and budgets, in the same store as the files
        (in memory when the file metadata given is kept in memory)."""
        if self._repository is not None and not self._repository.persistent:
            return MemoryChatRecords()
        if self.settings.mongodb_uri is not None:
            from app.chat.mongo import MongoChatRecords  # motor only when MongoDB is configured

            return MongoChatRecords.connect(
                self.settings.mongodb_uri.get_secret_value(), self.settings.mongodb_database
            )
        from app.chat.sqlite import SqliteChatRecords

        return SqliteChatRecords(self.database)

    def model_client(self) -> openai.AsyncOpenAI:
        settings = self.settings
        return openai.AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value() or "unset",
            base_url=settings.openai_base_url or None,
            max_retries=settings.openai_max_retries,
            timeout=settings.openai_timeout,
        )

    def chat_service(
        self, store: FileStore, client: openai.AsyncOpenAI | None = None, session_suffix: str = ""
    ) -> ChatService:
        """`session_suffix`: set by `chat`, so each process is a session of its own."""
        settings = self.settings
        return ChatService(
            client or self.model_client(),
            self.sandbox,
            store,
            self.records,
            runs_dir=self.layout.runs,
            default_model=settings.openai_model,
            allowed_models=settings.allowed_models,
            vision_models=settings.vision_model_prefixes,
            vision_max_bytes=settings.openai_vision_max_image_size,
            max_tool_rounds=settings.chat_max_tool_rounds,
            history_tokens=settings.chat_history_tokens,
            rate_limit=ChatRateLimit(settings.chat_rate_limit),
            limits=TurnLimits(
                max_tool_calls=settings.chat_max_tool_calls,
                max_sandbox_seconds=settings.chat_max_sandbox_seconds,
                max_upload_bytes=int(settings.chat_max_upload_mb * 1024**2),
            ),
            prices=price_table(settings.model_prices),
            budget=DailyBudget(
                self.records,
                DailyLimits(
                    tokens=settings.chat_daily_tokens,
                    cost=settings.chat_daily_cost_usd,
                    seconds=settings.sandbox_daily_seconds,
                ),
            ),
            tools=ToolSupport(settings.openai_tools),
            context_window=settings.openai_context_window,
            stream=settings.openai_streaming,
            session_suffix=session_suffix,
        )

    def access(self):
        """Who may use the bot where (app/bot/access.py), from the ALLOWED_* settings."""
        from app.bot.access import AccessPolicy  # the bot's only: other verbs never load discord

        settings = self.settings
        return AccessPolicy(
            guilds=settings.allowed_guilds,
            channels=settings.allowed_channels,
            roles=settings.allowed_roles,
            allow_dms=settings.allow_dms,
        )

    def cleanup(self, store: FileStore) -> CleanupService:
        """The cleanup pass of the files; with a sandbox service, containers, warm folders and
        cached packages are the service's to clean."""
        return CleanupService(
            store,
            None if self.uses_service else self.runner,
            package_cache_days=self.settings.package_cache_days,
            session_hours=self.settings.file_expiration_hours,
        )

    # Shutdown

    async def close(self) -> None:
        """Remove the warm pool and pending containers, close the engine, the sandbox client and
        the repository."""
        if "sandbox" in self.__dict__ and self.uses_service:
            await self.sandbox.close()
        if "runner" in self.__dict__:
            await self.runner.close()
        if self._store is not None:
            await self._store.repository.close()
            self._store = None
        if "database" in self.__dict__:
            await self.database.close()
        if self._engine is not None and self._owns_engine:
            self._engine.close()
