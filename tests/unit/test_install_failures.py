"""A package install that fails behind a TLS-intercepting proxy says so, and names the setting.

pip's own last words there are "No matching distribution found for toolz": the certificate
failure is only in its retry warnings. The install script reads them (sandbox_install.py runs in
the image; its functions are tested here on the host) and the host turns the cause into advice.
"""

import sandbox_install

from app.sandbox.packages.cache import PackageCache
from app.sandbox.packages.catalog import PackageCatalog
from app.sandbox.packages.installer import PackageInstaller
from app.sandbox.policy import SandboxPolicy
from tests.fakes.engine import FakeEngine

BEHIND_PROXY = """\
WARNING: Retrying (Retry(total=1, connect=None, read=None, redirect=None, status=None)) after \
connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] \
certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)'))': /simple/toolz/
Could not fetch URL https://index.example.test/simple/toolz/: There was a problem confirming the ssl \
certificate: HTTPSConnectionPool(host='index.example.test', port=443): Max retries exceeded - skipping
ERROR: Could not find a version that satisfies the requirement toolz (from versions: none)
ERROR: No matching distribution found for toolz
"""
NO_NETWORK = """\
WARNING: Retrying (Retry(total=1)) after connection broken by \
'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object>: Failed to \
establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/toolz/
ERROR: Could not find a version that satisfies the requirement toolz (from versions: none)
ERROR: No matching distribution found for toolz
"""
NOT_THERE = """\
ERROR: Could not find a version that satisfies the requirement nonesuch (from versions: none)
ERROR: No matching distribution found for nonesuch
"""


def test_the_cause_pip_hides_is_found_in_its_warnings():
    assert sandbox_install.failure_cause(BEHIND_PROXY) == "certificate"
    assert sandbox_install.failure_cause(NO_NETWORK) == "network"
    assert sandbox_install.failure_cause(NOT_THERE) == ""


def test_the_failure_shows_the_evidence_not_no_matching_distribution():
    failure = sandbox_install.failure(BEHIND_PROXY)
    assert failure["ok"] is False and failure["cause"] == "certificate"
    assert "CERTIFICATE_VERIFY_FAILED" in failure["reason"]
    assert len(failure["reason"]) <= sandbox_install.MAX_REASON
    plain = sandbox_install.failure(NOT_THERE)
    assert plain == {
        "ok": False,
        "reason": "Could not find a version that satisfies the requirement nonesuch (from "
        "versions: none) No matching distribution found for nonesuch",
        "cause": "",
    }


def installer(tmp_path, ca_bundle=None) -> PackageInstaller:
    policy = SandboxPolicy(image="img", data_dir=tmp_path)
    return PackageInstaller(
        policy,
        FakeEngine(),
        PackageCache(tmp_path / "packages"),
        PackageCatalog.build((), {}),
        ca_bundle=ca_bundle,
    )


def test_the_host_names_package_ca_bundle_for_a_certificate_failure(tmp_path):
    reason = installer(tmp_path)._failure_reason(sandbox_install.failure(BEHIND_PROXY))
    assert reason.startswith("the package index's TLS certificate is not trusted")
    assert "set PACKAGE_CA_BUNDLE to a PEM file with its CA certificate" in reason
    assert "No matching distribution" not in reason


def test_with_a_bundle_set_it_says_to_check_the_bundle(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    reason = installer(tmp_path, bundle)._failure_reason(sandbox_install.failure(BEHIND_PROXY))
    assert "check that PACKAGE_CA_BUNDLE holds the proxy's CA certificate" in reason


def test_an_unreachable_index_names_the_network_settings(tmp_path):
    reason = installer(tmp_path)._failure_reason(sandbox_install.failure(NO_NETWORK))
    assert "cannot be reached from the install container" in reason
    assert "PACKAGE_PROXY" in reason and "SANDBOX_PIP_INDEX_URL" in reason


def test_the_index_check_runs_the_install_script_in_check_mode(tmp_path):
    policy = SandboxPolicy(image="img", data_dir=tmp_path)
    args = policy.install_container_args(
        run_id="doctor", user_id="", work_dir=tmp_path, distribution="toolz", check_only=True
    )
    assert args["command"][-4:] == ["--check-index", "--work", "/work", "toolz"]
    assert args["network_mode"] == "codeinterp-install"  # the installs' own network
    assert not any("users" in str(m) for m in args["mounts"])
    install = policy.install_container_args(
        run_id="r", user_id="u", work_dir=tmp_path, distribution="toolz"
    )
    assert "--check-index" not in install["command"]


def test_the_index_check_reads_the_version_after_pips_warning():
    output = (
        "WARNING: pip index is currently an experimental command. It may be removed/changed "
        "in a future release without prior warning.\n"
        "toolz (1.0.0)\nAvailable versions: 1.0.0, 0.12.1\n"
    )
    assert sandbox_install.newest_version(output, "toolz") == "1.0.0"
    assert sandbox_install.newest_version("nothing", "toolz") == ""
