"""Checks of infra/: structure checks in Python always; `nginx -t`, `promtool check`/`test rules` and compose
`config` with the real tools (`.ci/run` installs them: they skip with the reason on a machine without them, and fail
under CI=true); `kubectl kustomize` where kubectl is installed. The metric names used by the alert rules and
the Grafana dashboard are checked against what the API really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, in_ci, require_binary

INFRA = REPO / "infra"
K8S = INFRA / "k8s"


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load_all(K8S / name)]


def exported_metric_names() -> set[str]:
    """Every metric family the API exposes (samples included: _total, _bucket, _sum, _count)."""
    from openautoglm.serve.metrics import Metrics

    # Flows push gauges named after their numbers; the alerts use the last-success time stamp.
    names: set[str] = {"openautoglm_flow_last_success_timestamp_seconds"}
    for family in Metrics().registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    return names


# --- Docker ------------------------------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_non_root_and_bakes_models() -> None:
    text = (INFRA / "docker" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, flags=re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.M)
    assert "build-essential" not in runtime  # compilers stay in the build stage
    assert "load_backend" in text and "local-use" in text and "local-lac" in text
    assert "HF_HUB_OFFLINE=1" in runtime and "HEALTHCHECK" in runtime
    assert "torch==2.13.0" in text  # the pinned CPU build, not an unpinned CUDA one
    # The base is a build argument: the public python image for users, a Debian-made one without a registry.
    assert re.search(r"^ARG BASE_IMAGE=python:\$\{PYTHON_VERSION\}-slim-bookworm$", text, flags=re.M)
    assert re.findall(r"^FROM (\S+) AS", text, flags=re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert not re.search(r"^# *syntax=", text, flags=re.M)  # BuildKit would pull that frontend from a registry
    ignore = (INFRA / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("**")] == "**" and "!openautoglm/**" in ignore


# --- compose -----------------------------------------------------------------------------------------------
REQUIRED_SERVICES = {
    "postgres", "redis", "prefect-server", "prefect-worker", "dask-scheduler", "dask-worker", "mlflow",
    "api-1", "api-2", "nginx", "prometheus", "pushgateway", "grafana",
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def test_compose_has_the_stack_with_limits_and_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == REQUIRED_SERVICES
    for name, service in services.items():
        limits = service["deploy"]["resources"]["limits"]
        assert {"cpus", "memory"} <= set(limits), name
        for dependency, condition in (
            (service.get("depends_on") or {}).items() if isinstance(service.get("depends_on"), dict) else []
        ):
            assert dependency in services, (name, dependency)
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
    for api in ("api-1", "api-2"):
        service = services[api]
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        env = service["environment"]
        assert env["OPENAUTOGLM_SERVE_RATE_LIMIT_STORAGE"].startswith("redis://redis:")
        assert env["ZHIPUAI_API_KEY"] == "${ZHIPUAI_API_KEY:-}"  # from the environment, never written here
        assert service["volumes"] == ["./secrets/jwt:/run/secrets/jwt:ro"]
    assert services["dask-worker"]["deploy"]["replicas"] == 2
    for name in ("nginx", "prometheus", "grafana", "postgres"):
        for volume in services[name].get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (INFRA / source).exists(), (name, source)


def test_compose_holds_no_secrets(compose: dict[str, Any]) -> None:
    text = (INFRA / "compose.yaml").read_text()
    for key in ("PASSWORD", "API_KEY", "SECRET"):
        for line in text.splitlines():
            if key in line and ":" in line and not line.lstrip().startswith("#"):
                value = line.split(":", 1)[1].strip()
                assert value.startswith("${") or "${" in value or value == "", line


def test_compose_file_validates_against_the_compose_spec(tmp_path: Path) -> None:
    """The official compose-spec JSON schema (vendored by check-jsonschema, offline); a misspelt key fails."""
    checker = Path(sys.executable).parent / "check-jsonschema"
    if not checker.exists():
        message = "check-jsonschema is not installed (pip install -e .[dev])"
        if in_ci():
            pytest.fail(f"{message}; make install puts it in the venv, so this is an error")
        pytest.skip(message)

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        command = [str(checker), "--builtin-schema", "vendor.compose-spec", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    good = check(INFRA / "compose.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text((INFRA / "compose.yaml").read_text().replace("    restart: unless-stopped", "    restrat: no", 1))
    assert check(broken).returncode != 0


def compose_command() -> list[str]:
    """`docker compose` (the v2 plugin) where it works, else Debian's `docker-compose` (v1.29): both run offline."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return [require_binary("docker-compose", install="apt-get install docker-compose, or the docker compose plugin")]


def test_compose_config_validates_and_refuses_a_misspelt_key(tmp_path: Path) -> None:
    compose = compose_command()
    env = {"POSTGRES_PASSWORD": "x", "GRAFANA_ADMIN_PASSWORD": "x", "PATH": "/usr/bin:/bin:/usr/local/bin"}

    def config(path: Path) -> subprocess.CompletedProcess[str]:
        command = [*compose, "-p", "open-autoglm", "-f", str(path), "config", "--quiet"]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    good = config(INFRA / "compose.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text((INFRA / "compose.yaml").read_text().replace("    restart: unless-stopped", "    restrat: no", 1))
    bad = config(broken)
    assert bad.returncode != 0 and "restrat" in bad.stdout + bad.stderr


def test_local_override_replaces_every_registry_image_and_isolates_the_network(tmp_path: Path) -> None:
    """infra/compose.local.yaml (make stack-test): no image that needs a registry, an internal network, and the
    merged file still validates."""
    base = yaml.safe_load((INFRA / "compose.yaml").read_text())
    local = yaml.safe_load((INFRA / "compose.local.yaml").read_text())
    assert local["networks"]["default"]["internal"] is True
    third_party = {name for name, s in base["services"].items() if s.get("image") != "open-autoglm:latest"}
    assert third_party - set(local["services"]) == {"grafana"}  # not a Debian package: left out of the local stack
    for name in third_party - {"grafana"}:
        assert local["services"][name]["image"] == "open-autoglm-services:bookworm", name
    stack = (REPO / "scripts" / "stack_test.py").read_text()
    assert all(f'"{name}"' in stack for name in set(base["services"]) - {"grafana"})
    compose = compose_command()
    env = {"POSTGRES_PASSWORD": "x", "GRAFANA_ADMIN_PASSWORD": "x", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    files = ["-f", str(INFRA / "compose.yaml"), "-f", str(INFRA / "compose.local.yaml")]
    result = subprocess.run(
        [*compose, "-p", "open-autoglm", *files, "config"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)
    assert merged["services"]["postgres"]["image"] == "open-autoglm-services:bookworm"
    assert merged["services"]["api-1"]["image"] == "open-autoglm:latest"


# --- nginx -------------------------------------------------------------------------------------------------
def test_nginx_balances_least_conn_over_both_replicas() -> None:
    text = (INFRA / "nginx" / "nginx.conf").read_text()
    upstream = re.search(r"upstream openautoglm_api \{(.*?)\}", text, flags=re.S)
    assert upstream is not None
    body = upstream.group(1)
    assert "least_conn;" in body
    assert re.findall(r"server (api-\d):8000 max_fails=\d+ fail_timeout=\d+s;", body) == ["api-1", "api-2"]
    assert "client_max_body_size 1m;" in text and "limit_req_status 429;" in text
    assert "proxy_next_upstream error timeout" in text


def test_nginx_config_test_when_nginx_is_installed(tmp_path: Path) -> None:
    nginx = require_binary("nginx", install="apt-get install nginx")
    # The compose host names do not resolve here: point the upstream at loopback for the syntax check.
    conf = (INFRA / "nginx" / "nginx.conf").read_text().replace("api-1:8000", "127.0.0.1:18001")
    conf = conf.replace("api-2:8000", "127.0.0.1:18002").replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    conf = re.sub(r"(\w+_temp_path) /tmp/", rf"\1 {tmp_path}/", conf)
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    result = subprocess.run(
        [nginx, "-t", "-c", str(path), "-e", str(tmp_path / "error.log")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


# --- Kubernetes --------------------------------------------------------------------------------------------
def test_k8s_workloads_have_requests_limits_probes_and_run_as_non_root() -> None:
    documents = k8s_documents()
    workloads = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet")]
    assert {w["metadata"]["name"] for w in workloads} == {
        "openautoglm-api", "redis", "postgres", "prefect-server", "prefect-worker", "dask-scheduler",
        "dask-worker", "mlflow",
    }  # fmt: skip
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items(), name
        for container in pod["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            assert "livenessProbe" in container, name
    api = next(w for w in workloads if w["metadata"]["name"] == "openautoglm-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert api["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"


def test_k8s_references_resolve() -> None:
    documents = k8s_documents()
    by_kind: dict[str, set[str]] = {}
    for d in documents:
        by_kind.setdefault(d["kind"], set()).add(d["metadata"]["name"])
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "openautoglm", d["metadata"]["name"]
    workloads = {d["metadata"]["name"]: d for d in documents if d["kind"] in ("Deployment", "StatefulSet")}
    for service in (d for d in documents if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matches = [
            w for w in workloads.values() if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matches, f"Service {service['metadata']['name']} selects no pod"
        ports = {p["name"] for w in matches for c in w["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
    for hpa in (d for d in documents if d["kind"] == "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in workloads
        assert hpa["spec"]["minReplicas"] >= 2
    text = json.dumps(documents)
    for secret in set(re.findall(r'"secretName": "([^"]+)"', text)) | set(
        re.findall(r'"secretKeyRef": \{"name": "([^"]+)"', text)
    ):
        assert secret in by_kind["Secret"], secret
    for config in set(re.findall(r'"configMapRef": \{"name": "([^"]+)"', text)):
        assert config in by_kind["ConfigMap"], config


def test_kubectl_kustomize_builds() -> None:
    """`make infra-tools` installs kubectl (Debian's kubernetes-client): here a skip, in CI a failure without it."""
    kubectl = require_binary("kubectl", install="Debian's kubernetes-client; `make infra-tools` installs it as root")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0 and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
    assert kinds.count("Deployment") == 7 and "HorizontalPodAutoscaler" in kinds and "Secret" in kinds


# --- Prometheus and Grafana --------------------------------------------------------------------------------
def rule_expressions() -> list[str]:
    rules = yaml.safe_load((INFRA / "prometheus" / "alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def test_alert_rules_cover_error_rate_latency_and_circuit() -> None:
    rules = yaml.safe_load((INFRA / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert {"OpenAutoGLMHighErrorRate", "OpenAutoGLMHighP99Latency", "OpenAutoGLMCircuitOpen"} <= set(alerts)
    for alert in alerts.values():
        assert alert["labels"]["severity"] in ("page", "warn") and alert["annotations"]["summary"]
    assert "0.5" in alerts["OpenAutoGLMHighP99Latency"]["expr"]
    assert "== 2" in alerts["OpenAutoGLMCircuitOpen"]["expr"]
    scrape = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    assert scrape["rule_files"] == ["/etc/prometheus/alerts.yml"]
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "openautoglm-api")
    assert job["static_configs"][0]["targets"] == ["api-1:8000", "api-2:8000"]


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    exported = exported_metric_names()
    dashboard = json.loads((INFRA / "grafana" / "dashboards" / "openautoglm-api.json").read_text())
    expressions = rule_expressions() + [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    # Metric names outside quoted label values (job="openautoglm_run_task" is a label, not a metric).
    unquoted = [re.sub(r'"[^"]*"', '""', e) for e in expressions]
    used = {m for e in unquoted for m in re.findall(r"\b(openautoglm_[a-z_]+)\b", e)}
    assert used, "no metric referenced"
    assert used <= exported, used - exported
    recorded = {r["record"] for g in yaml.safe_load((INFRA / "prometheus" / "alerts.yml").read_text())["groups"]
                for r in g["rules"] if "record" in r}  # fmt: skip
    for expression in expressions:
        for name in re.findall(r"\b(openautoglm:[a-z0-9_:]+)\b", expression):
            assert name in recorded, name
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("latency", "batch", "cache", "upstream", "circuit"):
        assert topic in titles


def test_promtool_checks_and_rule_unit_tests_when_installed(tmp_path: Path) -> None:
    promtool = require_binary("promtool", install="apt-get install prometheus, or a Prometheus release")
    folder = INFRA / "prometheus"

    def run(*args: str) -> str:
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    run("check", "rules", str(folder / "alerts.yml"))
    # The scrape config names the rule file by its path in the container: check a copy pointing here.
    config = yaml.safe_load((folder / "prometheus.yml").read_text())
    config["rule_files"] = [str(folder / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    run("check", "config", str(tmp_path / "prometheus.yml"))
    # Synthetic series: the circuit, error-rate and p99 alerts fire when they should and not before.
    assert "SUCCESS" in run("test", "rules", str(folder / "alerts_test.yml"))
