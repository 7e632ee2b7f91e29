"""Approved-package auto-install with real installs from the package index.

The packages used are small, pure-Python, approved and NOT in the image (toolz, more-itertools,
xmltodict, humanize). A module-scoped DATA_DIR gives these tests their own, initially empty,
package cache. Install containers are counted from the engine's own event stream.
"""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.sandbox import RunStatus
from app.sandbox.policy import INSTANCE_LABEL, ROLE_LABEL
from app.wiring import build_runner

SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="module")
def package_settings(settings, tmp_path_factory):
    # This machine reaches PyPI through a TLS-intercepting proxy whose CA is in its bundle.
    return settings.model_copy(
        update={
            "data_dir": tmp_path_factory.mktemp("package-data"),
            "package_ca_bundle": SYSTEM_CA if SYSTEM_CA.is_file() else None,
        }
    )


@pytest.fixture
def package_runner(package_settings, engine):
    return build_runner(package_settings, engine)


class InstallContainers:
    """Counts install containers the engine creates for this suite's instance, from the engine's
    live event stream (its replay buffer is too small on a busy shared engine)."""

    def __init__(self, engine, instance):
        self.seen = []
        self._stream = engine.client.events(
            filters={
                "type": "container",
                "event": "create",
                "label": [f"{ROLE_LABEL}=install", f"{INSTANCE_LABEL}={instance}"],
            },
            decode=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        try:
            for event in self._stream:
                self.seen.append(event)
        except Exception:  # the stream is closed when the test ends
            pass

    def created(self) -> int:
        time.sleep(0.5)  # let the engine deliver events of containers created just now
        return len(self.seen)

    def reset(self) -> None:
        time.sleep(0.5)
        self.seen.clear()

    def close(self) -> None:
        self._stream.close()


@pytest.fixture
def install_containers(engine, settings):
    counter = InstallContainers(engine, settings.sandbox_instance)
    yield counter
    counter.close()


async def test_approved_package_installs_once_then_is_reused(
    package_runner, make_request, install_containers
):
    code = "import toolz\nprint(sorted(toolz.frequencies('abca').items()))\n"
    first = await package_runner.run(make_request(code, timeout=10))
    assert first.status is RunStatus.OK, (first.stderr, first.message)
    assert first.stdout == "[('a', 2), ('b', 1), ('c', 1)]\n"
    [installed] = first.installed_packages
    assert installed.startswith("toolz==")
    assert first.install_seconds > 0
    assert install_containers.created() == 1

    install_containers.reset()
    second = await package_runner.run(make_request(code))
    assert second.status is RunStatus.OK and second.stdout == first.stdout
    assert second.installed_packages == () and second.install_seconds == 0
    assert install_containers.created() == 0


async def test_unapproved_package_is_refused_without_any_install(
    package_runner, make_request, install_containers
):
    result = await package_runner.run(make_request("import torch\nprint('never')\n"))
    assert result.status is RunStatus.ERROR
    assert "ModuleNotFoundError: No module named 'torch'" in result.stderr  # the original error
    assert "'torch'" in result.message and "not on the approved list" in result.message
    assert "xgboost" in result.message  # approved packages for the same need
    assert result.installed_packages == () and result.install_seconds == 0
    assert install_containers.created() == 0  # no install step, so no network use at all


async def test_two_concurrent_runs_needing_the_same_package_both_succeed(
    package_runner, make_request, install_containers
):
    code = "import more_itertools\nprint(list(more_itertools.chunked(range(5), 2)))\n"
    results = await asyncio.gather(
        package_runner.run(make_request(code)), package_runner.run(make_request(code))
    )
    for result in results:
        assert result.status is RunStatus.OK, (result.stderr, result.message)
        assert result.stdout == "[[0, 1], [2, 3], [4]]\n"
    assert sorted(len(r.installed_packages) for r in results) == [0, 1]
    assert install_containers.created() == 1


async def test_run_with_packages_still_has_no_network_and_cannot_change_them(
    package_runner, make_request
):
    code = (
        "import os, socket, toolz\n"
        "print(sorted(os.listdir('/sys/class/net')))\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 443), timeout=3)\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('no connection')\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 443)\n"
        "    print('resolved')\n"
        "except OSError:\n"
        "    print('no dns')\n"
        "try:\n"
        "    open(os.path.join(os.path.dirname(toolz.__file__), 'evil.py'), 'w')\n"
        "    print('wrote into the package cache')\n"
        "except OSError as exc:\n"
        "    print('read-only', exc.errno)\n"
        "try:\n"
        "    import pip\n"
        "    print('pip importable')\n"
        "except ImportError:\n"
        "    print('no pip')\n"
    )
    result = await package_runner.run(make_request(code))
    assert result.status is RunStatus.OK, (result.stderr, result.message)
    assert result.stdout.splitlines() == [
        "['lo']",
        "no connection",
        "no dns",
        "read-only 30",
        "no pip",
    ]


async def test_import_detection_cannot_see_falls_back_to_one_retry(
    package_runner, make_request, install_containers
):
    code = (
        "open('attempt.txt', 'w').write('x')\n"
        "import importlib\n"
        "mod = importlib.import_module('xml' + 'todict')\n"
        "print(mod.parse('<a>1</a>'))\n"
    )
    result = await package_runner.run(make_request(code))
    assert result.status is RunStatus.OK, (result.stderr, result.message)
    assert result.stdout == "{'a': '1'}\n"
    assert [p.split("==")[0] for p in result.installed_packages] == ["xmltodict"]
    assert [f.name for f in result.files] == ["attempt.txt"]  # the first attempt's file is gone
    assert install_containers.created() == 1


async def test_there_is_exactly_one_retry(package_runner, make_request, install_containers):
    # Two imports detection cannot see: the retry installs the first, then dies on the second.
    code = (
        "import importlib\n"
        "importlib.import_module('uni' + 'decode')\n"
        "importlib.import_module('xlsx' + 'writer')\n"
        "print('both')\n"
    )
    result = await package_runner.run(make_request(code))
    assert result.status is RunStatus.ERROR
    assert "No module named 'xlsxwriter'" in result.stderr
    assert "'xlsxwriter' is installed now: run the code again" in result.message
    assert install_containers.created() == 2
    again = await package_runner.run(make_request(code))
    # The next run: both are cached now, and the one retry gets every cached package.
    assert again.status is RunStatus.OK, (again.stderr, again.message)
    assert again.stdout == "both\n" and again.installed_packages == ()


async def test_install_failure_keeps_the_error_and_adds_pips_reason(
    package_settings, engine, make_request, install_containers
):
    missing = "codeinterp-test-absent-dist"
    runner = build_runner(
        package_settings.model_copy(
            update={
                "package_approved": f"toolz,{missing}",
                "package_import_names": f"codeinterp_test_absent={missing}",
            }
        ),
        engine,
    )
    result = await runner.run(make_request("import codeinterp_test_absent\n"))
    assert result.status is RunStatus.ERROR
    assert "No module named 'codeinterp_test_absent'" in result.stderr
    assert f"installing the approved package '{missing}' failed" in result.message
    assert "No matching distribution" in result.message and len(result.message) < 900
    assert result.installed_packages == ()
    assert install_containers.created() == 1  # one attempt, no retry of a failed install


async def test_install_timeout_is_its_own_limit(package_settings, engine, make_request):
    runner = build_runner(
        package_settings.model_copy(update={"package_install_timeout": 0.3}), engine
    )
    result = await runner.run(make_request("import sortedcontainers\n", timeout=30))
    assert result.status is RunStatus.ERROR
    assert "installing the approved package 'sortedcontainers' failed" in result.message
    assert "took longer than 0.3 s" in result.message
    assert not runner.packages.cache.has(
        (await runner.packages.current_image_key()), "sortedcontainers"
    )


def test_run_json_and_packages_cli(package_settings, settings):
    env = {
        **os.environ,
        "DATA_DIR": str(package_settings.data_dir),
        "SANDBOX_INSTANCE": settings.sandbox_instance,
        "PACKAGE_CA_BUNDLE": "",
    }
    if SYSTEM_CA.is_file():
        env["PACKAGE_CA_BUNDLE"] = str(SYSTEM_CA)

    def cli(*args, stdin=None):
        proc = subprocess.run(
            [sys.executable, "-m", "app", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    ran = json.loads(
        cli("run", "-", "--json", stdin="import humanize\nprint(humanize.intcomma(12345))\n")
    )
    assert ran["stdout"] == "12,345\n"
    assert [p.split("==")[0] for p in ran["installed_packages"]] == ["humanize"]
    assert ran["install_seconds"] > 0

    listed = json.loads(cli("packages", "list", "--json"))
    names = {p["distribution"]: p for p in listed["packages"]}
    assert "humanize" in names
    assert names["humanize"]["current"] is True and names["humanize"]["version"]
    kept = json.loads(cli("packages", "cleanup", "--json"))
    assert kept["removed_packages"] == [] and kept["kept_packages"] == len(names)
    assert "humanize==" in cli("packages", "list")


async def test_behind_a_tls_proxy_without_the_ca_the_failure_names_the_setting(
    package_settings, engine, make_request, tmp_path_factory
):
    # This machine's HTTPS goes through an intercepting proxy: without its CA, pip cannot verify
    # the index, and used to say only "No matching distribution found for toolz". Its own, empty
    # package cache: other tests of this module install toolz.
    fresh = {"package_ca_bundle": None, "data_dir": tmp_path_factory.mktemp("no-ca-data")}
    runner = build_runner(package_settings.model_copy(update=fresh), engine)
    if not (await runner.packages.check_index("toolz")).reason:
        pytest.skip("the package index is trusted without an extra CA here (no TLS proxy)")
    result = await runner.run(make_request("import toolz\n"))
    assert result.status is RunStatus.ERROR
    assert "installing the approved package 'toolz' failed" in result.message
    assert "TLS certificate is not trusted" in result.message
    assert "PACKAGE_CA_BUNDLE" in result.message


async def test_the_index_check_of_doctor(package_settings, engine):
    with_ca = build_runner(package_settings, engine).packages
    outcome = await with_ca.check_index("toolz")
    assert outcome.reason == "" and outcome.version
    without = build_runner(package_settings.model_copy(update={"package_ca_bundle": None}), engine)
    outcome = await without.packages.check_index("toolz")
    if not outcome.reason:
        pytest.skip("the package index is trusted without an extra CA here (no TLS proxy)")
    assert "TLS certificate is not trusted" in outcome.reason
    assert "PACKAGE_CA_BUNDLE" in outcome.reason


async def test_runs_that_need_cached_packages_are_served_warm(
    package_settings, engine, make_request
):
    runner = build_runner(package_settings.model_copy(update={"sandbox_warm_pool_size": 1}), engine)
    await runner.start()
    try:
        assert await runner.pool.wait_ready()  # made before the package is installed
        first = await runner.run(
            make_request("import humanize\nprint(humanize.intcomma(1234567))\n")
        )
        assert await runner.pool.wait_ready()
        probe = (
            "import os, humanize\n"
            "print(humanize.intcomma(1000))\n"
            "try:\n"
            "    os.listdir('/opt/packages/.work')\n"
            "    print('install work readable')\n"
            "except OSError:\n"
            "    print('install work closed')\n"
            "try:\n"
            "    open('/opt/packages/humanize/evil.py', 'w')\n"
            "except OSError as exc:\n"
            "    print('read-only', exc.errno)\n"
        )
        second = await runner.run(make_request(probe))
        stats = runner.pool.stats
    finally:
        await runner.close()
    assert first.status is RunStatus.OK, (first.stderr, first.message)
    assert first.stdout == "1,234,567\n"
    assert second.status is RunStatus.OK, (second.stderr, second.message)
    assert second.stdout.splitlines() == ["1,000", "install work closed", "read-only 30"]
    assert stats.taken == 2 and stats.missed == 0  # both warm, the first one too


async def test_a_sessions_names_from_an_installed_package_come_back_without_its_import(
    package_runner, make_request
):
    # Run 1 imports an auto-installed package; run 2 of the same session never imports it, yet
    # its names (a function and an object of the package's classes) must restore.
    user, session = "pkg-session-user", "pkg-session"
    first = await package_runner.run(
        make_request(
            "import toolz\nfreq = toolz.frequencies\nbiggest = toolz.curry(max)\n",
            user_id=user,
            session_id=session,
        )
    )
    assert first.status is RunStatus.OK, (first.stderr, first.message)
    second = await package_runner.run(
        make_request("print(freq('abca')['a'], biggest(1, 2))\n", user_id=user, session_id=session)
    )
    assert second.status is RunStatus.OK, (second.stderr, second.message, second.state_notes)
    assert second.stdout == "2 2\n"
    assert not any("not restored" in note for note in second.state_notes)
    # Another user's session of the same name gets none of it, and no mount either.
    other = await package_runner.run(
        make_request(
            "import importlib.util\nprint(importlib.util.find_spec('toolz') is None)\n",
            user_id="x",
            session_id=session,
        )
    )
    assert other.status is RunStatus.OK and other.stdout == "True\n"
