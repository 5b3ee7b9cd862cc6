"""Shared by the browser journeys: where their screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory) -> Path:
    """$C4D_SCREENSHOT_DIR when set (to keep and look at the pictures), else a temporary folder."""
    configured = os.environ.get("C4D_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
