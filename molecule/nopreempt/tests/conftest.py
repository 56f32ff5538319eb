import sys
from pathlib import Path

import pytest

# The drills and the single-VIP tests are shared by the scenarios.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture
def preempt() -> bool:
    return False
