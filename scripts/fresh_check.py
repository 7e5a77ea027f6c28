"""`make fresh-check`: the README's set-up paths on a fresh machine, where no tool installed by hand can hide a gap.

A clean clone of the repository's committed HEAD (not the working tree) is copied into throwaway containers made
from the project's offline Debian base (infra/docker/make-base-image.sh: debootstrap minbase with python3, venv,
libgomp1, tini and CA certificates: what `make image` builds on), one container per group of paths, and each path's
steps run there as a new user runs them:

  demo        make demo: the venv, torch and the project from the registries, the canvas where Node is, the quick
              start and the run_task flow
  test        make install, infra-tools, ui-test: what `make test` installs before pytest (the suite is not run)
  image       make tools-image: docker.io and debootstrap, as a machine with no daemon and no registry needs them
  stack-test  make tools-stack-test: a Docker daemon's package, compose, openssl
  not root    make image and make stack-test as an unprivileged user in its own clone: each refused with one line
              that says what to do, a non-zero exit, no traceback

First, in each container, `make` itself is installed (scripts/ensure-tools.sh): the README's one prerequisite that
no target can install. The containers reach the registries this machine reaches (Debian, PyPI, npm) through
Docker's default bridge network; they get this machine's pip configuration (`pip config list`: indexes, find-links,
the certificate bundle, constraints) and the local paths it names, read-only, and nothing else of the host. No
Docker daemon runs inside them: the image and stack-test paths check their tool installation, not a build.

Prints a table (path -> passed, or the first failing step and its last lines), writes report.json and one log per
path under --out, and exits 0 when every path passed, 1 otherwise. A Docker daemon is needed on the host: as root
with none answering, one is started as `make image` does (infra/docker/docker-daemon.sh; `make docker-stop`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE = "open-autoglm-base:bookworm"
SRC = "/src/open-autoglm"  # the clean clone in each container (root's; readable by all)
NOBODY = "65534:65534"
NOBODY_CLONE = "/tmp/open-autoglm"  # the unprivileged user's own copy, writable by it
# A refusal's one line: what is missing (ensure-tools.sh, stack_test.py) or that no daemon answers, with what to do.
REFUSAL = re.compile(
    r"(?:is|are) missing: run (?:`make [\w-]+` )?as root,? or `apt-get install [^`]+`"
    r"|no Docker daemon answers; start one"
)
MAKE_NOISE = re.compile(r"^make(\[\d+\])?: ")  # make's own "*** [Makefile:N: target] Error 1" lines
_print_lock = threading.Lock()


def say(message: str) -> None:
    with _print_lock:
        print(f"fresh-check: {message}", flush=True)


@dataclass(frozen=True)
class Step:
    """One command of a path. `refused`: it must fail with exactly one line of advice on stderr (not root)."""

    name: str
    command: str
    user: str = "root"
    workdir: str = SRC
    refused: bool = False
    timeout: float = 2400


@dataclass
class Outcome:
    path: str
    passed: bool = False
    seconds: float = 0.0
    failed_step: str | None = None
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    steps: list[dict[str, object]] = field(default_factory=list)


MAKE = Step("make (the README's prerequisite)", "bash scripts/ensure-tools.sh --for 'fresh machine' make")
# Container -> its paths, run in order; each container starts from the base and the clone, nothing else.
GROUPS: dict[str, dict[str, list[Step]]] = {
    "demo": {
        "demo": [Step("make demo", "make demo")],
        "test: tools": [
            Step("make install", "make install"),
            Step("make infra-tools", "make infra-tools"),
            Step("make ui-test", "make ui-test"),
        ],
    },
    "image": {"image: tools": [Step("make tools-image", "make tools-image")]},
    "stack-test": {"stack-test: tools": [Step("make tools-stack-test", "make tools-stack-test")]},
    "not-root": {
        "not root: one line": [
            Step("own clone", f"cp -r {SRC} {NOBODY_CLONE}", user=NOBODY, workdir="/tmp"),
            Step("make image", "make image", user=NOBODY, workdir=NOBODY_CLONE, refused=True, timeout=300),
            Step("make stack-test", "make stack-test", user=NOBODY, workdir=NOBODY_CLONE, refused=True, timeout=300),
        ],
    },
}


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60)} s" if seconds >= 60 else f"{seconds:.0f} s"


def host(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def docker_client() -> str:
    """The client of a daemon that answers (started here as root where none does, as `make image` does)."""
    result = subprocess.run(
        ["bash", str(REPO / "infra/docker/docker-daemon.sh"), "make fresh-check"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(result.returncode)  # docker-daemon.sh said why, in one line
    return result.stdout.strip().splitlines()[-1]


def pip_settings() -> tuple[dict[str, str], list[str]]:
    """This machine's pip configuration as PIP_* variables, and the local paths it names (to mount read-only)."""
    listed = host([sys.executable, "-m", "pip", "config", "list"])
    scopes = {"global": 0, "user": 1, "site": 2, ":env:": 3}  # pip's precedence, lowest first
    values: dict[str, tuple[int, str]] = {}
    for line in listed.stdout.splitlines():
        match = re.match(r"^(:env:|global|user|site)\.([\w-]+)='(.*)'$", line)
        if match:
            rank, name = scopes[match[1]], match[2]
            if name not in values or values[name][0] <= rank:
                values[name] = (rank, match[3])
    env = {f"PIP_{name.upper().replace('-', '_')}": value for name, (_, value) in values.items()}
    mounts: set[str] = set()
    for name, (_, value) in values.items():
        for token in value.split():
            path = token.removeprefix("file://")
            if not path.startswith("/") or not Path(path).exists():
                continue
            # A file:// index is <root>/simple whose pages link to ../../files: mount its root.
            mounts.add(str(Path(path).parent) if token.startswith("file://") and name.endswith("index-url") else path)
    return env, sorted(mounts)


def clean_clone(workspace: Path) -> tuple[Path, str]:
    clone = workspace / "open-autoglm"
    result = host(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)])
    if result.returncode != 0:
        sys.exit(f"fresh-check: git clone of {REPO} failed: {result.stderr.strip()}")
    head = host(["git", "-C", str(clone), "log", "-1", "--format=%h %<(60,trunc)%s"]).stdout.strip()
    return clone, head


class Container:
    def __init__(self, docker: str, name: str, base: str, network: str, env: dict[str, str], mounts: list[str]):
        self.docker, self.name = docker, name
        command = [docker, "run", "-d", "--name", name, "--label", "open-autoglm-fresh-check=1", "--network", network]
        for key, value in env.items():
            command += ["-e", f"{key}={value}"]
        for path in mounts:
            command += ["-v", f"{path}:{path}:ro"]
        result = host([*command, base, "sleep", "infinity"])
        if result.returncode != 0:
            raise RuntimeError(f"docker run {base} failed: {result.stderr.strip()}")

    def copy_in(self, clone: Path) -> None:
        for command in (
            [self.docker, "exec", self.name, "mkdir", "-p", str(Path(SRC).parent)],
            [self.docker, "cp", str(clone), f"{self.name}:{Path(SRC).parent}"],
        ):
            result = host(command)
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(command[:3])} failed: {result.stderr.strip()}")

    def run(self, step: Step, log: Path) -> tuple[int, str, str, float]:
        start = time.monotonic()
        command = [self.docker, "exec", "-u", step.user, "-w", step.workdir, self.name, "bash", "-c", step.command]
        try:
            result = host(command, timeout=step.timeout)
            rc, out, err = result.returncode, result.stdout, result.stderr
        except subprocess.TimeoutExpired as error:
            rc, out, err = 124, str(error.stdout or ""), f"timed out after {step.timeout:.0f} s"
        seconds = time.monotonic() - start
        with log.open("a") as handle:
            handle.write(f"$ {step.command}   (user {step.user}, {step.workdir}): exit {rc}, {seconds:.1f} s\n")
            handle.write(f"--- stdout\n{out}\n--- stderr\n{err}\n\n")
        return rc, out, err, seconds

    def remove(self) -> None:
        host([self.docker, "rm", "-f", self.name])


def judge(step: Step, rc: int, out: str, err: str) -> str | None:
    """None where the step did what it should; else why not, in a line or three."""
    if "Traceback (most recent call last)" in out + err:
        return "a Python traceback: " + (err or out).strip().splitlines()[-1]
    if step.refused:
        advice = [line for line in err.splitlines() if line.strip() and not MAKE_NOISE.match(line)]
        if rc == 0:
            return "not refused: it went on without root"
        if len(advice) != 1 or not REFUSAL.search(advice[0]):
            return f"refused with {len(advice)} lines instead of one line of advice: " + " | ".join(advice[-3:])
        return None
    if rc == 0:
        return None
    lines = [line for line in (out + "\n" + err).splitlines() if line.strip()]
    return f"exit {rc}: " + " | ".join(lines[-3:])


def run_group(
    group: str, paths: dict[str, list[Step]], docker: str, clone: Path, args: argparse.Namespace,
    env: dict[str, str], mounts: list[str],
) -> list[Outcome]:  # fmt: skip
    outcomes = [Outcome(path) for path in paths]
    name = f"open-autoglm-fresh-{group}-{os.getpid()}"
    log = args.out / f"{group}.log"
    try:
        container = Container(docker, name, args.base, args.network, env, mounts)
    except RuntimeError as error:
        for outcome in outcomes:
            outcome.failed_step, outcome.detail = "the container", str(error)
        return outcomes
    try:
        container.copy_in(clone)
        rc, out, err, seconds = container.run(MAKE, log)
        failure = judge(MAKE, rc, out, err)
        for outcome, (path, steps) in zip(outcomes, paths.items(), strict=True):
            outcome.seconds = seconds if outcome is outcomes[0] else 0.0
            if failure:
                outcome.failed_step, outcome.detail = MAKE.name, failure
                continue
            for step in steps:
                say(f"[{path}] {step.name} ...")
                rc, out, err, seconds = container.run(step, log)
                outcome.seconds += seconds
                problem = judge(step, rc, out, err)
                outcome.steps.append({"step": step.name, "exit": rc, "seconds": round(seconds, 1), "ok": not problem})
                # Lines naming a tool that could not be had, though the step passed (npm without Node 20).
                outcome.notes += [line for line in err.splitlines() if " is missing: " in line and not step.refused]
                if step.refused and not problem:
                    outcome.notes.append(next(line for line in err.splitlines() if REFUSAL.search(line)))
                say(f"[{path}] {step.name}: {'ok' if not problem else 'FAILED'} in {minutes(seconds)}")
                if problem:
                    outcome.failed_step, outcome.detail = step.name, problem
                    break
            else:
                outcome.passed = True
    except RuntimeError as error:
        for outcome in outcomes:
            if not outcome.passed and not outcome.failed_step:
                outcome.failed_step, outcome.detail = "the container", str(error)
    finally:
        if not args.keep:
            container.remove()
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE, help="the image the containers start from (built when absent)")
    parser.add_argument("--network", default="bridge", help="the containers' Docker network (they need the registries)")
    parser.add_argument("--only", action="append", choices=list(GROUPS), help="run only these groups of paths")
    parser.add_argument("--keep", action="store_true", help="leave the containers (docker rm -f them afterwards)")
    parser.add_argument("--out", type=Path, default=None, help="report.json and the logs (default: a new temp folder)")
    args = parser.parse_args()
    start = time.monotonic()
    args.out = args.out or Path(tempfile.mkdtemp(prefix="open-autoglm-fresh-check-", dir="/var/tmp"))
    args.out.mkdir(parents=True, exist_ok=True)

    docker = docker_client()
    if args.base == BASE:
        made = subprocess.run(["bash", str(REPO / "infra/docker/make-base-image.sh"), BASE], env={**os.environ,
                              "DOCKER": docker})  # fmt: skip
        if made.returncode != 0:
            return 1
    workspace = Path(tempfile.mkdtemp(prefix="open-autoglm-fresh-clone-", dir="/var/tmp"))
    try:
        clone, head = clean_clone(workspace)
        dirty = host(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        say(f"a clean clone of HEAD ({head})" + (" — uncommitted changes here are not in it" if dirty else ""))
        env, mounts = pip_settings()
        say(f"pip settings passed in: {', '.join(sorted(env)) or 'none'}; read-only: {', '.join(mounts) or 'none'}")
        groups = {g: GROUPS[g] for g in (args.only or GROUPS)}
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            futures = [pool.submit(run_group, g, p, docker, clone, args, env, mounts) for g, p in groups.items()]
            outcomes = [outcome for future in futures for outcome in future.result()]
    finally:
        shutil.rmtree(workspace, ignore_errors=True)

    total = time.monotonic() - start
    print(f"\nfresh-check of {head} on {args.base} ({minutes(total)} in all; logs: {args.out})\n")
    print("| path | result | time |\n|---|---|---|")
    for o in outcomes:
        result = "passed" if o.passed else f"FAILED at `{o.failed_step}`: {o.detail}"
        if o.notes:
            result += "<br>" + "<br>".join(sorted(set(o.notes)))
        print(f"| {o.path} | {result} | {minutes(o.seconds)} |")
    report = {
        "head": head, "base": args.base, "seconds": round(total, 1), "passed": all(o.passed for o in outcomes),
        "paths": [o.__dict__ for o in outcomes],
    }  # fmt: skip
    (args.out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
