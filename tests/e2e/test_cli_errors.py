"""CLI errors: one clear line, no traceback, and a password typed into a source argument never reaches the terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    assert "column(s) ['nope'] not in the data; columns are ['id', 'text', 'label']" in " ".join(done.stderr.split())
    assert "Beginning flow run" not in output  # checked before a flow run starts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "examples/user_feedback.csv", "--labels", "正面,负面", "--label-column", "gold"], "['gold'] not in"),
        (["ingest", "examples/user_feedback.csv", "--id-column", "key"], "['key'] not in the data"),
        (["ingest", "examples/user_feedback.csv", "--rename", "text=body"], "['text'] not in the data"),
        (["run", "sqlite:////nonexistent/shop.db", "--query", "reviews", "--labels", "a,b"], "no such file"),
    ],
)
def test_bad_input_stops_before_the_flow_run(args: list[str], message: str) -> None:
    from tests.conftest import REPO

    done = subprocess.run(
        [sys.executable, "-m", "openautoglm.cli", *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-2000:]
    assert message in " ".join(done.stderr.split()), output[-2000:]
    assert "Traceback" not in output and "Beginning flow run" not in output, output[-2000:]


def test_a_missing_table_is_named_before_the_flow_run(tmp_path: Path) -> None:
    import sqlite3

    from tests.conftest import REPO

    database = tmp_path / "shop.db"
    sqlite3.connect(database).execute("CREATE TABLE reviews (text TEXT, label TEXT)").connection.commit()
    base = [sys.executable, "-m", "openautoglm.cli", "run", f"sqlite:///{database}", "--labels", "a,b"]
    done = subprocess.run([*base, "--query", "review"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2 and "no table 'review'" in done.stderr, done.stderr[-2000:]
    done = subprocess.run(
        [*base, "--query", "reviews", "--text-column", "body"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 2 and "['body'] not in the data" in " ".join(done.stderr.split()), done.stderr[-2000:]
