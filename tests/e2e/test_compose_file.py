"""docker-compose.yml names only things that exist: it cannot be run here (no Docker engine), so check
every reference it makes by reading files."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RASTRO_SERVICES = {
    "ingest": 8001,
    "normalization": 8002,
    "eta": 8003,
    "notification": 8004,
    "dlq-replay": 8005,
}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _workspace_packages() -> dict[str, Path]:
    """Distribution name → member directory, for every workspace member."""
    members: dict[str, Path] = {}
    for pyproject in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]:
        members[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent
    return members


def _modules_under(base: str) -> set[str]:
    """Names runnable with ``python -m``: packages with a ``__main__.py`` under ``<base>/*/src/``."""
    return {p.parent.name for p in ROOT.glob(f"{base}/*/src/*/__main__.py")}


def test_every_build_context_and_dockerfile_exists() -> None:
    for name, service in _services().items():
        build = service.get("build")
        if build is None:
            continue
        context = ROOT / build["context"]
        assert context.is_dir(), f"{name}: build context {build['context']} is missing"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile.relative_to(ROOT)} is missing"


def test_every_built_package_is_a_workspace_member() -> None:
    packages = _workspace_packages()
    for name, service in _services().items():
        if "build" in service:
            package = f"rastro-{service['build']['args']['SERVICE']}"
            assert package in packages, f"{name}: builds {package}, which is no workspace member"


def test_the_dockerfile_copies_every_workspace_members_pyproject() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+/pyproject\.toml) ", dockerfile, flags=re.MULTILINE))
    members = {str(p.relative_to(ROOT)) + "/pyproject.toml" for p in _workspace_packages().values()}
    assert copied == members


def test_every_command_runs_something_that_exists() -> None:
    runnable = _modules_under("services") | _modules_under("libs")
    scripts: dict[str, str] = {}
    for member in _workspace_packages().values():
        scripts.update(tomllib.loads((member / "pyproject.toml").read_text())["project"].get("scripts", {}))
    for name, service in _services().items():
        command = service.get("command")
        if not command or "build" not in service:
            continue
        if command[:2] == ["python", "-m"]:
            assert command[2] in runnable, f"{name}: no {command[2]}/__main__.py under services/ or libs/"
        else:
            assert command[0] in scripts, f"{name}: {command[0]} is no console script of the workspace"
            module = scripts[command[0]].split(":")[0]
            assert any(ROOT.glob(f"libs/*/src/{module.replace('.', '/')}.py")), f"{name}: {module} is missing"


def test_each_service_runs_its_own_module_on_its_own_port() -> None:
    services = _services()
    for name, port in RASTRO_SERVICES.items():
        service = services[name]
        assert service["command"] == ["python", "-m", "rastro_" + name.replace("-", "_")]
        assert service["build"]["args"]["SERVICE"] == name
        env = service["environment"]
        assert env["RASTRO_HTTP_PORT"] == str(port)
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["DATABASE_URL"].endswith("@postgres:5432/rastro")
        assert env["RASTRO_MODE"] == "production"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["ports"] == [f"{port}:{port}"]


def test_every_bind_mounted_file_exists() -> None:
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: mounts {source}, which is missing"


def test_published_host_ports_are_unique() -> None:
    published: list[str] = []
    for service in _services().values():
        for mapping in service.get("ports", []):
            published.append(str(mapping).rsplit(":", 1)[0])
    assert len(published) == len(set(published)), published


def test_depends_on_names_defined_services() -> None:
    services = _services()
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on undefined {dependency}"


def test_prometheus_scrapes_every_service_where_compose_runs_it() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    for name, port in RASTRO_SERVICES.items():
        assert targets.get(name) == [f"{name}:{port}"]
    for rule_file in config.get("rule_files", []):
        assert (ROOT / "deploy" / "prometheus" / Path(rule_file).name).is_file()


def test_grafana_provisioning_parses() -> None:
    grafana = ROOT / "deploy" / "grafana"
    datasources = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    dashboards = list((grafana / "dashboards").glob("*.json"))
    assert dashboards
    for dashboard in dashboards:
        assert json.loads(dashboard.read_text())["panels"]
