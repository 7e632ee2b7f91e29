"""Install limits: new distributions per run and installs per user per day, on the fake engine."""

import pytest

from app.sandbox import SandboxPolicy
from app.sandbox.packages import PackageCache, PackageCatalog, PackageInstaller
from app.sandbox.packages.installer import DAY, InstallBudget, image_key
from tests.fakes.engine import FakeEngine

NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
UNDER_IF_FALSE = "if False:\n" + "".join(f"    import {name}\n" for name in NAMES)


@pytest.fixture
def installer(tmp_path):
    engine = FakeEngine()
    cache = PackageCache(tmp_path / "packages")
    cache.store_image_modules(image_key(engine.image_id("x")), ["numpy"])
    policy = SandboxPolicy(image="img:test", data_dir=tmp_path)
    installer = PackageInstaller(
        policy,
        engine,
        cache,
        PackageCatalog.build(NAMES),
        max_per_run=2,
        max_per_user_day=3,
    )
    installer.installs = []
    original = installer._install_blocking

    def counted(key, dist, run_id, user_id):
        installer.installs.append((user_id, dist))
        return original(key, dist, run_id, user_id)

    installer._install_blocking = counted
    return installer


async def test_imports_nobody_runs_install_at_most_the_per_run_limit(installer):
    plan = await installer.prepare(UNDER_IF_FALSE, "r1", "u1")
    assert len(installer.installs) == 2
    refused = [d for d, why in plan.failed.items() if "at most 2 new packages" in why]
    assert len(refused) == 6
    message = installer.explain(plan, "ModuleNotFoundError: No module named 'hotel'\n")
    assert "'hotel' was not installed: a run installs at most 2 new packages" in message


async def test_a_user_gets_a_daily_number_of_installs(installer):
    await installer.prepare("import alpha, bravo", "r1", "u1")
    plan = await installer.prepare("import charlie, delta", "r2", "u1")
    # one run's installs go in parallel, so their order is the threads'
    assert sorted(d for _, d in installer.installs) == ["alpha", "bravo", "charlie"]
    assert "per user in 24 hours" in plan.failed["delta"]
    await installer.prepare("import echo", "r3", "u2")  # another user has their own budget
    assert installer.installs[-1] == ("u2", "echo")


async def test_install_containers_use_the_projects_network(installer):
    await installer.prepare("import alpha", "r1", "u1")
    [network] = installer.engine.networks.values()
    assert network["name"] == installer.policy.install_network
    assert network["options"]["com.docker.network.bridge.enable_icc"] == "false"


def test_the_daily_budget_frees_up_after_24_hours():
    now = [0.0]
    budget = InstallBudget(2, clock=lambda: now[0])
    assert budget.take("u") and budget.take("u") and not budget.take("u")
    now[0] = DAY + 1
    assert budget.take("u")
