"""`audit` with SANDBOX_SERVICE_URL set: the policy the sandbox service applies, read from its
read-only /v1/policy, checked against the policy this process's settings describe.

The bot in compose has no Docker access, so its audit cannot start a probe container: it reports
the service's policy and whether it is the one the shared settings ask for. Where the engine is
reachable too (the host, or the service's own container), the full probe audit runs as well.
"""

from __future__ import annotations

import json

from app.ops.engine_view import AuditReport


def service_checks(
    report: AuditReport,
    address: str,
    expected: dict,
    applied: dict,
    expected_timeout: float,
    applied_timeout: float,
) -> None:
    """Add the service's policy to the report, and a check that it is the expected one."""
    expected = json.loads(json.dumps(expected))  # the form JSON carries, as the service's
    report.service = {"address": address, "policy": applied, "max_timeout": applied_timeout}
    differ = sorted(
        k for k in expected.keys() | applied.keys() if expected.get(k) != applied.get(k)
    )
    if expected_timeout != applied_timeout:
        differ.append("max timeout")
    shown = "; ".join(
        f"{key}: service {applied.get(key, applied_timeout)!r}, here "
        f"{expected.get(key, expected_timeout)!r}"
        for key in differ
    )
    report.check(
        "the sandbox service applies the policy of these settings",
        not differ,
        shown or f"{len(applied)} settings equal, timeout {applied_timeout:g} s",
        "give sandboxd and this process the same SANDBOX_* settings and CODE_EXECUTION_TIMEOUT "
        "(one .env), then restart the service",
    )
