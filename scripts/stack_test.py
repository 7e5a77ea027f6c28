"""`make stack-test`: start the compose stack (infra/compose.yaml + infra/compose.local.yaml) and check it.

Checks: the seed's example answered through nginx with a token; a deployment run completing on the stack's worker,
with its MLflow run in the stack's PostgreSQL; Prometheus scraping both API replicas; the project's processes not
running as root. Prints each check and the timings, writes them as JSON (--out), and takes the stack down (with
its volumes) unless --keep. Needs open-autoglm:latest (`make image`) and a Docker daemon; the services image is
built here from Debian's packages when absent. The containers share an internal network: they reach each other
only, and this script reaches them at their addresses on it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
PROJECT = os.environ.get("STACK_TEST_PROJECT", "open-autoglm-stacktest")
KID = PROJECT  # one key file per project: two runs side by side do not share (or delete) each other's
# Every service but Grafana (not a Debian package; the local stack runs without it).
SERVICES = [
    "postgres", "redis", "prefect-server", "prefect-worker", "dask-scheduler", "dask-worker", "mlflow",
    "api-1", "api-2", "nginx", "prometheus", "pushgateway",
]  # fmt: skip
OUR_IMAGE_SERVICES = ["prefect-server", "prefect-worker", "dask-scheduler", "dask-worker", "mlflow", "api-1", "api-2"]
# --serving-only: the API behind nginx with Redis and Prometheus (2 containers of our image instead of 8; with the
# vfs driver each is a full copy of the image).
SERVING = ["postgres", "redis", "api-1", "api-2", "nginx", "prometheus", "pushgateway"]


def log(message: str) -> None:
    print(f"stack-test: {message}", flush=True)


def docker() -> str:
    """A client that talks to the daemon (Debian's 20.10 client where the newer one lacks buildx)."""
    for client in ("docker", "/usr/bin/docker"):
        path = shutil.which(client)
        if path and subprocess.run([path, "info"], capture_output=True).returncode == 0:
            return path
    sys.exit("stack-test: no Docker daemon answers (make image starts one as root)")


def missing(tool: str, package: str, alternative: str = "") -> str:
    """The one line for a tool `make stack-test` installs (scripts/ensure-tools.sh) and a direct run lacks."""
    return f"stack-test: {tool} is missing: run `make stack-test` as root, or `apt-get install {package}`{alternative}"


def compose_command() -> list[str]:
    """The v2 plugin (`docker compose`), else Debian's docker-compose 1.29; exits with one line where neither is."""
    client = shutil.which("docker")
    if client and subprocess.run([client, "compose", "version"], capture_output=True).returncode == 0:
        return [client, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    sys.exit(missing("compose", "docker-compose", " (or the docker compose plugin)"))


COMPOSE: list[str] = []


def compose_base() -> list[str]:
    files = ["-f", str(INFRA / "compose.yaml"), "-f", str(INFRA / "compose.local.yaml")]
    if not COMPOSE:
        COMPOSE.extend(compose_command())
    return [*COMPOSE, "-p", PROJECT, *files]


def run(command: list[str], *, check: bool = True, timeout: float = 600, **kwargs: Any) -> str:
    """stdout of `command`; a failure raises with check=True, else is returned as text (clean-up and logs never
    raise a second error)."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as error:
        if check:
            raise RuntimeError(f"{' '.join(command[:6])}... could not run: {error}") from error
        return f"({' '.join(command[:6])}... could not run: {error})"
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:6])}... failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def ensure_services_image(client: str) -> None:
    if (
        subprocess.run([client, "image", "inspect", "open-autoglm-services:bookworm"], capture_output=True).returncode
        == 0
    ):
        return
    base = "open-autoglm-services-base:bookworm"
    packages = ["postgresql", "redis-server", "nginx", "prometheus", "prometheus-pushgateway", "wget"]
    log("building the services image from Debian's packages")
    subprocess.run(["bash", str(INFRA / "docker" / "make-base-image.sh"), base, *packages], check=True,
                   env={**os.environ, "DOCKER": client})  # fmt: skip
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    run([*build_command(), "--network", "none", "--build-arg", f"BASE_IMAGE={base}", "-t",
         "open-autoglm-services:bookworm", str(INFRA / "docker" / "local")], env=env)  # fmt: skip


def build_command() -> list[str]:
    """A client that builds with BuildKit, as in build-image.sh: the buildx plugin, or a client before 23.0 (Debian's
    docker.io 20.10) with DOCKER_BUILDKIT=1 (a newer client without buildx refuses to build)."""
    for client in ("docker", "/usr/bin/docker"):
        path = shutil.which(client)
        if not path:
            continue
        if subprocess.run([path, "buildx", "version"], capture_output=True).returncode == 0:
            return [path, "buildx", "build", "--load"]
        version = subprocess.run([path, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
        major = version.stdout.strip().split(".")[0]
        if major.isdigit() and int(major) < 23:
            return [path, "build"]
    sys.exit("stack-test: no Docker client that builds with BuildKit (install docker-buildx)")


def container_ip(client: str, service: str) -> str:
    name = run([*compose_base(), "ps", "-q", service], env=ENV).split()[0]
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return run([client, "inspect", "-f", fmt, name]).strip()


def http(url: str, body: dict[str, Any] | None = None, token: str | None = None, timeout: float = 10) -> Any:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


def wait_for(what: str, probe: Any, timeout: float) -> float:
    start = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - start < timeout:
        try:
            if probe():
                return time.monotonic() - start
        except Exception as error:
            last = error
        time.sleep(2)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s (last error: {last})")


ENV: dict[str, str] = {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--start-timeout", type=float, default=900)
    parser.add_argument("--serving-only", action="store_true", help="no Prefect, MLflow or Dask (no deployment run)")
    args = parser.parse_args()
    services = SERVING if args.serving_only else SERVICES
    client = docker()
    base = compose_base()  # before anything is started or written: a missing compose is one line, no clean-up
    if not shutil.which("openssl"):
        sys.exit(missing("openssl", "openssl"))
    if subprocess.run([client, "image", "inspect", "open-autoglm:latest"], capture_output=True).returncode != 0:
        sys.exit("stack-test: open-autoglm:latest is missing: make image")
    ensure_services_image(client)

    keys = Path(tempfile.mkdtemp(prefix="stack-test-keys-"))
    private = keys / "private.pem"
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(private)])
    jwt_dir = INFRA / "secrets" / "jwt"
    jwt_dir.mkdir(parents=True, exist_ok=True)
    public = jwt_dir / f"{KID}.RS256.pem"
    run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)])
    public.chmod(0o644)
    ENV.update(os.environ)
    ENV.update(POSTGRES_PASSWORD=secrets.token_hex(16), GRAFANA_ADMIN_PASSWORD=secrets.token_hex(16))
    # With the vfs storage driver a container starts as a full copy of its image (2.7 GB): creating one takes
    # longer than compose's 60 s HTTP timeout when several are made at once. (Do not lower COMPOSE_PARALLEL_LIMIT
    # below the number of services: compose 1.29 then deadlocks, its service and container steps sharing the slots.)
    ENV.setdefault("COMPOSE_HTTP_TIMEOUT", "900")
    figures: dict[str, Any] = {"checks": {}}
    failures: list[str] = []

    def check(name: str, ok: bool, detail: str) -> None:
        figures["checks"][name] = {"ok": ok, "detail": detail}
        log(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
        if not ok:
            failures.append(name)

    try:
        start = time.monotonic()
        log(f"up: {' '.join(services)}")
        run([*base, "--compatibility", "up", "-d", "--no-build", *services], env=ENV, timeout=args.start_timeout)
        nginx = container_ip(client, "nginx")
        wait_for("nginx -> API", lambda: http(f"http://{nginx}:8080/readyz") is not None, args.start_timeout)
        figures["stack_start_s"] = round(time.monotonic() - start, 1)
        log(f"stack answering through nginx after {figures['stack_start_s']} s")

        # 1. the seed's example through nginx with a token
        token = run([sys.executable, "-m", "openautoglm.serve.tokens", "--key", str(private), "--kid", KID,
                     "--sub", "stack-test", "--role", "viewer"]).strip()  # fmt: skip
        body = {"text": "物流很快，包装也很好", "labels": ["正面", "负面", "中性"],
                "prompt_template": "判断以下用户反馈的情感倾向:{text}"}  # fmt: skip
        try:
            answer = http(f"http://{nginx}:8080/api/v1/classify", body, token)
        except urllib.error.HTTPError as error:
            answer = {"code": error.code, "body": error.read().decode(errors="replace")}
        check("classify through nginx", answer["code"] == 0 and answer.get("data", {}).get("label") in body["labels"],
              json.dumps(answer, ensure_ascii=False))  # fmt: skip
        try:
            http(f"http://{nginx}:8080/api/v1/classify", body)
            check("no token refused", False, "answered without a token")
        except urllib.error.HTTPError as error:
            check("no token refused", error.code == 401, f"HTTP {error.code}")

        # 2. a deployment run on the stack's worker, its MLflow run in the stack's PostgreSQL
        if args.serving_only:
            log("serving only: no deployment run")
        else:
            t = time.monotonic()
            run(
                [*base, "exec", "-T", "prefect-worker", "openautoglm", "deploy", "--only", "nightly-classification"],
                env=ENV,
            )
            out = run([*base, "exec", "-T", "prefect-worker", "prefect", "deployment", "run",
                       "run_task/nightly-classification", "--watch", "--watch-timeout", "600"],
                      env=ENV, check=False, timeout=700)  # fmt: skip
            figures["deployment_run_s"] = round(time.monotonic() - t, 1)
            final = re.findall(r"finished (?:in state|successfully in) '(\w+)'", out)
            completed = final[-1:] == ["Completed"]
            check("deployment run on the stack's worker", completed, f"{figures['deployment_run_s']} s; "
                  + " | ".join(line.strip() for line in out.splitlines()[-3:]))  # fmt: skip
            if not completed:
                log(run([*base, "logs", "--tail", "60", "prefect-worker", "dask-worker"], env=ENV, check=False)[-8000:])
            sql = "SELECT count(*) FROM runs WHERE status = 'FINISHED'"
            count = run([*base, "exec", "-T", "postgres", "sh", "-c",
                         f'$(ls -d /usr/lib/postgresql/*/bin | tail -1)/psql -U openautoglm -d mlflow -tAc "{sql}"'],
                        env=ENV, check=False).strip()  # fmt: skip
            check(
                "MLflow run in the stack's PostgreSQL", count.isdigit() and int(count) >= 1, f"finished runs: {count}"
            )
        # 3. Prometheus scrapes both API replicas
        prometheus = container_ip(client, "prometheus")

        def both_up() -> bool:
            targets = http(f"http://{prometheus}:9090/api/v1/targets")["data"]["activeTargets"]
            up = {
                t["labels"]["instance"]
                for t in targets
                if t["labels"]["job"] == "openautoglm-api" and t["health"] == "up"
            }
            return up == {"api-1:8000", "api-2:8000"}

        try:
            waited = wait_for("Prometheus targets", both_up, 120)
            check("Prometheus scrapes both API replicas", True, f"both up after {waited:.0f} s more")
        except RuntimeError as error:
            check("Prometheus scrapes both API replicas", False, str(error))

        # 4. the project's processes run as uid 10001, none as root
        for service in [s for s in OUR_IMAGE_SERVICES if s in services]:
            for name in run([*base, "ps", "-q", service], env=ENV).split():
                uids = {line.split()[1] for line in run([client, "top", name, "-eo", "pid,uid"]).splitlines()[1:]}
                check(f"non-root {service}", uids == {"10001"}, f"uids {sorted(uids)}")
        figures["images_mb"] = {
            image: round(int(run([client, "image", "inspect", "-f", "{{.Size}}", image]).strip()) / 1e6)
            for image in ("open-autoglm:latest", "open-autoglm-services:bookworm")
        }
    except Exception as error:
        failures.append(str(error))
        log(f"FAIL {error}")
        log(run([*base, "ps"], env=ENV, check=False))
        log(run([*base, "logs", "--tail", "30"], env=ENV, check=False)[-6000:])
    finally:
        if not args.keep:
            t = time.monotonic()
            run([*base, "down", "-v", "--remove-orphans"], env=ENV, check=False)
            figures["stack_down_s"] = round(time.monotonic() - t, 1)
        public.unlink(missing_ok=True)
        shutil.rmtree(keys, ignore_errors=True)
    figures["failures"] = failures
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    log(f"{len(figures['checks']) - len([c for c in figures['checks'].values() if not c['ok']])} passed, "
        f"{len([c for c in figures['checks'].values() if not c['ok']])} failed")  # fmt: skip
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
