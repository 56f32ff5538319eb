import sys
from pathlib import Path

# The drills are shared by the scenarios.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
