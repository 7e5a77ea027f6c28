"""Browser tests' shared set-up: Debian's chromium driven by Playwright (no browser download), and where their
screenshots go (``OPENAUTOGLM_SCREENSHOTS`` when set: the docs' pictures are made that way)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_binary


def chromium() -> str:
    return require_binary("chromium", install="apt-get install -y chromium (or make infra-tools)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def shots_dir(tmp: Path) -> Path:
    folder = Path(os.environ.get("OPENAUTOGLM_SCREENSHOTS") or tmp / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
