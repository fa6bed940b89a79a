from __future__ import annotations

import pytest

from flows import Protocol, load_protocol
from flows.loader import BUNDLED_DIR

SEED_FILE = BUNDLED_DIR / "cd19_cart_ball_consolidation_v1.yaml"


@pytest.fixture(scope="session")
def seed() -> Protocol:
    return load_protocol(SEED_FILE)
