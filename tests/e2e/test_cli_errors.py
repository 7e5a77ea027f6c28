"""CLI errors: one clear line, no traceback, and a password typed into a source argument never reaches the terminal."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize(
    "source",
    [
        "postgresql:/reader:s3cret-pw@127.0.0.1:5432/test",  # one slash: not a URL, taken as a file name
        "postgres//reader:s3cret-pw@127.0.0.1/test.csv",
        "postgresql+psycopg://reader:s3cret-pw@127.0.0.1:5432/test",  # a password inside a real URL
    ],
)
def test_mistyped_database_url_is_not_echoed(source: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openautoglm.cli", "ingest", source, "--query", "feedback"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_column_is_one_clear_line_without_a_traceback() -> None:
    import os

    from tests.conftest import REPO

    command = [sys.executable, "-m", "openautoglm.cli", "run", "examples/user_feedback.csv", "--labels", "正面,负面"]
    done = subprocess.run(
        [*command, "--text-column", "nope"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "OPENAUTOGLM_TASK_RUNNER": "threads"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    assert "error: Text column(s) ['nope'] not in the data" in " ".join(done.stderr.split())
