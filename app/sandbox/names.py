"""Names the run path shares with the engine and the image: labels on containers and networks,
and paths inside the sandbox image (sandbox-image/Dockerfile puts the scripts there)."""

LABEL_PREFIX = "io.codeinterp"
MANAGED_LABEL = f"{LABEL_PREFIX}.managed"
INSTANCE_LABEL = f"{LABEL_PREFIX}.instance"
RUN_LABEL = f"{LABEL_PREFIX}.run_id"
USER_LABEL = f"{LABEL_PREFIX}.user_id"
ROLE_LABEL = f"{LABEL_PREFIX}.role"
OWNER_LABEL = f"{LABEL_PREFIX}.owner"
POOL_LABEL = f"{LABEL_PREFIX}.pool_id"
CODE_UID_LABEL = f"{LABEL_PREFIX}.code_uid"
ICC_OPTION = "com.docker.network.bridge.enable_icc"

PYTHON = "/opt/venv/bin/python"
RUNNER_SCRIPT = "/opt/sandbox/sandbox_runner.py"
COLLECTOR_SCRIPT = "/opt/sandbox/sandbox_collect.py"
INSTALL_SCRIPT = "/opt/sandbox/sandbox_install.py"
IMAGE_MODULES_FILE = "/opt/sandbox/image-modules.json"
