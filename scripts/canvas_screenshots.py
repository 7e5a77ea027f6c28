"""The docs' canvas pictures (``docs/img/canvas-*.png``), taken by the canvas's browser test.

``tests/e2e/test_canvas.py`` builds the seed's classification in Debian's chromium against a real Prefect server,
worker and API, and saves a screenshot at each step a reader should see (the forms, the built graph, the finished
run, the evaluate node's metrics, a failed node's panel). This runs that test with ``OPENAUTOGLM_SCREENSHOTS``
pointing at a temporary folder and copies the canvas pictures into ``docs/img``; nothing is copied unless the test
passed. Needs the built page (``make ui``) and chromium; takes a few minutes.

    .venv/bin/python scripts/canvas_screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/e2e/test_canvas.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="where the pictures go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="canvas-shots-") as folder:
        env = {**os.environ, "OPENAUTOGLM_SCREENSHOTS": folder, "OMP_NUM_THREADS": "1"}
        ran = subprocess.run(
            [sys.executable, "-m", "pytest", TEST, "-q", "-x", "-p", "no:cacheprovider"], cwd=REPO, env=env
        )
        if ran.returncode != 0:
            print(f"the browser test failed (exit {ran.returncode}): no picture copied", file=sys.stderr)
            return ran.returncode
        shots = sorted(Path(folder).glob("canvas-*.png"))
        if not shots:
            print(f"the test saved no canvas-*.png in {folder}", file=sys.stderr)
            return 1
        args.out.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy2(shot, args.out / shot.name)
            print(f"{args.out / shot.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
