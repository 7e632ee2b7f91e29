"""DataLayout: the one owner of DATA_DIR's folders. Every module asks it for paths.

    users/<user_id>/   stored files (FileStore; metadata paths are relative to DATA_DIR)
    incoming/          uploads being received (FileStore), moved into users/ when complete
    runs/<id>/         a run's collected outputs before they are stored for the user
    staging/<id>/      throw-away work of one command (`run`, `chat` without MongoDB)
    pool/<pool id>/    a warm container's input folder (the warm pool)
    packages/          the auto-install package cache, one folder per image
    sessions/<key>/    a session's state snapshot (app/sandbox/sessions.py; the sandbox side's)
    sbom/              the CycloneDX SBOM of each built image
    tmp/<id>/          work folders of admin tools (bench, audit, doctor)
    sandboxd/          the sandbox service's default Unix socket (`python -m app sandboxd`)
    sandbox-etc/hosts  the /etc/hosts mounted read-only into every sandbox (SandboxPolicy)
    codeinterp.sqlite3 the embedded database when MONGODB_URI is not set (app/database.py)
    state/             small files of the bot's own (the slash commands' hash)

Nothing here imports from app: the sandbox, the file store and the CLI all take their folders
from one object. `sweepable()` names the folders whose old entries are crash leftovers, so the
cleanup pass can remove them without knowing who made them.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

USERS = "users"
INCOMING = "incoming"
RUNS = "runs"
STAGING = "staging"
POOL = "pool"
PACKAGES = "packages"
SESSIONS = "sessions"
SBOM = "sbom"
TMP = "tmp"
SERVICE = "sandboxd"
SERVICE_SOCKET = "sandboxd.sock"
SANDBOX_ETC = "sandbox-etc"
STATE = "state"
DATABASE = "codeinterp.sqlite3"
COMMANDS_HASH = "slash-commands.sha256"


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @property
    def users(self) -> Path:
        return self.root / USERS

    @property
    def incoming(self) -> Path:
        return self.root / INCOMING

    @property
    def runs(self) -> Path:
        return self.root / RUNS

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    @property
    def pool(self) -> Path:
        return self.root / POOL

    @property
    def packages(self) -> Path:
        return self.root / PACKAGES

    @property
    def sessions(self) -> Path:
        return self.root / SESSIONS

    @property
    def sbom(self) -> Path:
        return self.root / SBOM

    @property
    def tmp(self) -> Path:
        return self.root / TMP

    @property
    def service_socket(self) -> Path:
        """Where `python -m app sandboxd` listens unless SANDBOXD_LISTEN says otherwise."""
        return self.root / SERVICE / SERVICE_SOCKET

    @property
    def sandbox_hosts(self) -> Path:
        return self.root / SANDBOX_ETC / "hosts"

    @property
    def database(self) -> Path:
        return self.root / DATABASE

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def commands_hash(self) -> Path:
        """The hash of the slash commands last synced to Discord (synced again on change)."""
        return self.state / COMMANDS_HASH

    def new_run_dir(self) -> Path:
        """A fresh (not yet created) folder for one run's outputs."""
        return self.runs / uuid.uuid4().hex

    def new_staging_dir(self, prefix: str = "") -> Path:
        """A fresh (not yet created) staging folder for one command's throw-away work."""
        return self.staging / f"{prefix}{uuid.uuid4().hex}"

    def new_tmp_dir(self, prefix: str) -> Path:
        """A fresh, created work folder of an admin tool (swept by cleanup if left behind)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp)).resolve()

    def owned_folders(self) -> tuple[Path, ...]:
        """Every folder of DATA_DIR the bot writes into (the start-up check tries each)."""
        return (
            self.users,
            self.incoming,
            self.runs,
            self.staging,
            self.pool,
            self.packages,
            self.sessions,
            self.tmp,
            self.state,
            self.sandbox_hosts.parent,
        )

    def sweepable(self) -> tuple[Path, ...]:
        """Folders whose entries belong to a single run or command: once older than any run,
        an entry there is a leftover of a crashed process."""
        return (self.runs, self.staging, self.tmp)
