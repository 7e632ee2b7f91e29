import sys
from pathlib import Path

# The in-container runtime is plain Python; unit tests exercise its pieces on the host.
RUNTIME_DIR = Path(__file__).resolve().parents[1] / "sandbox-image" / "runtime"
sys.path.insert(0, str(RUNTIME_DIR))
