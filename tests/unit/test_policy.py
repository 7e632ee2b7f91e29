from pathlib import Path

import pytest

from app.config import Settings
from app.sandbox.policy import RUNSC_PIDS_HEADROOM, HostPathError, SandboxPolicy
from app.wiring import sandbox_policy


@pytest.fixture
def policy(tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        sandbox_memory="512m",
        sandbox_cpus=1.5,
        sandbox_pids_limit=64,
        sandbox_runtime="runsc",
        sandbox_instance="t1",
    )
    return sandbox_policy(settings)


def test_container_is_hardened_by_default(policy, tmp_path):
    (tmp_path / "in").mkdir()
    args = policy.container_args(run_id="r1", user_id="42", input_dir=tmp_path / "in")
    assert args["network_mode"] == "none"
    assert args["cap_drop"] == ["ALL"]
    assert "no-new-privileges" in args["security_opt"]
    assert args["read_only"] is True
    assert args["init"] is True
    assert args["pids_limit"] == 64 + RUNSC_PIDS_HEADROOM  # gVisor's own threads count too
    assert (
        SandboxPolicy(image="x", pids_limit=64).container_args(
            run_id="r", user_id="u", input_dir=None
        )["pids_limit"]
        == 64
    )  # runc: exactly the setting
    assert args["mem_limit"] == args["memswap_limit"] == 512 * 1024**2  # no swap
    assert args["nano_cpus"] == 1_500_000_000
    assert args["runtime"] == "runsc"
    assert args["environment"] == {}
    assert args["user"] == f"{policy.keeper_uid}:{policy.keeper_uid}"  # the keeper, not the code
    assert "privileged" not in args and "cap_add" not in args and "devices" not in args
    assert args["log_config"]["Type"] == "none"  # output never piles up in engine logs


def test_tmpfs_is_bounded_and_not_executable(policy):
    tmpfs = policy.tmpfs()
    for target in ("/tmp", "/mnt/output"):
        assert "size=" in tmpfs[target] and "noexec" in tmpfs[target] and "nosuid" in tmpfs[target]
    assert f"uid={policy.code_uid}" in tmpfs["/mnt/output"]


def test_input_is_a_read_only_bind(policy, tmp_path):
    (tmp_path / "in").mkdir()
    [mount] = policy.container_args(run_id="r", user_id="u", input_dir=tmp_path / "in")["mounts"]
    assert mount["Target"] == "/mnt/data" and mount["ReadOnly"] is True and mount["Type"] == "bind"
    assert mount["Source"] == str((tmp_path / "in").resolve())


def test_labels_mark_run_user_and_instance(policy):
    labels = policy.container_args(run_id="r9", user_id="77", input_dir=None)["labels"]
    assert labels["io.codeinterp.managed"] == "true"
    assert labels["io.codeinterp.run_id"] == "r9"
    assert labels["io.codeinterp.user_id"] == "77"
    assert labels["io.codeinterp.instance"] == "t1"
    assert policy.ownership_filter() == {
        "label": ["io.codeinterp.managed=true", "io.codeinterp.instance=t1"]
    }


def test_code_environment_is_an_allow_list(policy, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    env = policy.runner_exec()["environment"]
    assert "DISCORD_TOKEN" not in env and "OPENAI_API_KEY" not in env
    assert not any("secret" in v for v in env.values())
    assert env["OUTPUT_DIR"] == "/mnt/output" and env["HOME"] == "/tmp"
    assert policy.runner_exec()["user"] == f"{policy.code_uid}:{policy.code_uid}"


def test_host_path_maps_data_dir_for_a_bot_in_a_container(tmp_path):
    policy = SandboxPolicy(image="x", data_dir=tmp_path, host_data_dir=Path("/srv/codeinterp"))
    assert policy.host_path(tmp_path / "users" / "1") == "/srv/codeinterp/users/1"


def test_paths_outside_data_dir_are_never_mounted(policy, tmp_path):
    with pytest.raises(HostPathError):
        policy.host_path(Path("/etc"))
    with pytest.raises(HostPathError):
        policy.host_path(tmp_path / ".." / "elsewhere")


def test_install_container_has_network_but_no_user_files_or_code(tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        sandbox_runtime="runsc",
        sandbox_instance="t1",
        package_proxy="http://proxy.local:3128",
        sandbox_pip_index_url="https://mirror.local/simple",
    )
    policy = sandbox_policy(settings)
    work = tmp_path / "packages" / "img" / ".work" / "w1"
    work.mkdir(parents=True)
    args = policy.install_container_args(
        run_id="r1", user_id="42", work_dir=work, distribution="toolz"
    )
    assert args["network_mode"] == "bridge"
    assert "runtime" not in args  # gVisor is registered without network
    assert args["command"][-2:] == ["/work", "toolz"] and "-I" in args["command"]
    [mount] = args["mounts"]  # its own work folder only: no input, no output, no user file
    assert (mount["Target"], mount["Source"], mount["ReadOnly"]) == ("/work", str(work), False)
    assert args["cap_drop"] == ["ALL"] and args["read_only"] is True
    assert "no-new-privileges" in args["security_opt"]
    assert args["user"].endswith(f":{policy.install_uid}") and not args["user"].startswith("0:")
    assert args["labels"]["io.codeinterp.role"] == "install"
    assert args["labels"]["io.codeinterp.instance"] == "t1"
    env = args["environment"]
    assert env["PIP_INDEX_URL"] == "https://mirror.local/simple"
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://proxy.local:3128"
    assert not any(k.startswith(("DISCORD", "OPENAI", "MONGO")) for k in env)


def test_run_mounts_cached_packages_read_only_and_keeps_no_network(policy, tmp_path):
    entry = tmp_path / "packages" / "img" / "toolz"
    entry.mkdir(parents=True)
    args = policy.container_args(
        run_id="r1", user_id="42", input_dir=None, packages={"toolz": entry}
    )
    [mount] = args["mounts"]
    assert (mount["Target"], mount["Source"], mount["ReadOnly"]) == (
        "/opt/packages/toolz",
        str(entry),
        True,
    )
    assert args["network_mode"] == "none"
    assert policy.package_paths({"toolz": entry}) == ["/opt/packages/toolz/site"]


def test_package_cache_outside_data_dir_is_refused(policy, tmp_path):
    with pytest.raises(HostPathError):
        policy.package_mounts({"toolz": Path("/elsewhere/toolz")})
