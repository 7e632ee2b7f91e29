"""The sandbox service (`python -m app sandboxd`) and its client: the runner behind a narrow API,
so the process that talks to Discord and the model needs no Docker access (docs/scaling.md).

The service owns the runner; the client is the other SandboxService (app/sandbox/service.py).
Nothing here reads settings: app/wiring.py builds both.
"""

from app.sandboxd.address import AddressError, ServiceAddress
from app.sandboxd.client import SandboxClient, ServiceRefused
from app.sandboxd.server import SandboxServer, ServeError
from app.sandboxd.wire import RunLimits

__all__ = [
    "AddressError",
    "RunLimits",
    "SandboxClient",
    "SandboxServer",
    "ServeError",
    "ServiceAddress",
    "ServiceRefused",
]
