"""The Kubernetes manifests in ``deploy/k8s``, checked offline (issue 12: "`make test` validates every
manifest offline").

1. yamllint (``deploy/k8s/.yamllint``) on every file;
2. the base and each overlay rendered by ``render`` below: a small kustomize that supports exactly the
   features the manifests use (``resources`` files and directories, ``namespace``, ``patches`` as
   strategic-merge files targeted by kind + name, ``images``, ``replicas``) and refuses anything else.
   Where ``kubectl`` is installed, its built-in kustomize renders the same directories and must agree;
3. every rendered core object validated by ``kubernetes_validate`` (strict) against the oldest and the
   newest Kubernetes we support; the CRDs (ServiceMonitor, ScaledObject, TriggerAuthentication) against
   small schemas of our own, the fields their controllers require;
4. cross-checks against the code: probes point at routes the service serves, on the port its settings
   use; every environment variable is a setting of that service; KEDA triggers name the services'
   real consumer groups and work topics, and scale up to the partition count from the topic registry;
   the shutdown grace period covers the kit's bounded shutdown; the migration Job's script resolves
   each service's own migrations.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import importlib.util
import inspect
import json
import re
import shutil
import subprocess
import sys
import tomllib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices

from rastro_events.topics import SERVICES, all_topics, dlq_topic
from rastro_kit import service as kit_service
from rastro_kit.db import load_migrations
from rastro_kit.settings import KitSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TARGETS = ("base", "overlays/dev", "overlays/prod")
OLDEST_KUBERNETES = "1.29"
KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, kubernetes_validate.latest_version())
PART_OF = {"app.kubernetes.io/part-of": "rastro"}

Obj = dict[str, Any]

# --------------------------------------------------------------------------------------------------
# A minimal kustomize
# --------------------------------------------------------------------------------------------------

_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "namespace", "patches", "images", "replicas"}
_CLUSTER_SCOPED = {"Namespace"}
_PATCHABLE = {"Deployment", "ConfigMap", "Service", "Job", "PodDisruptionBudget"}
# Strategic-merge keys of the lists our patches touch; every other list is replaced, as kustomize does.
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name"}


def _load_all(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def strategic_merge(target: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        assert not key.startswith("$"), f"patch directive {key} is not supported by this renderer"
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            strategic_merge(target[key], value)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(target.get(key), list):
            merge_key = _MERGE_KEYS[key]
            existing = {item[merge_key]: item for item in target[key]}
            for item in value:
                if item[merge_key] in existing:
                    strategic_merge(existing[item[merge_key]], item)
                else:
                    target[key].append(copy.deepcopy(item))
        else:
            target[key] = copy.deepcopy(value)


def _pod_containers(obj: Obj) -> list[Obj]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def render(directory: Path) -> list[Obj]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(kustomization) - _KUSTOMIZATION_KEYS
    assert not unsupported, f"{directory}: this renderer does not support {sorted(unsupported)}"
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects += render(path) if path.is_dir() else _load_all(path)
    for patch_ref in kustomization.get("patches", []):
        assert set(patch_ref) == {"path"}, f"{directory}: only `patches: - path:` is supported"
        for patch in _load_all(directory / patch_ref["path"]):
            kind, name = patch["kind"], patch["metadata"]["name"]
            assert kind in _PATCHABLE, f"strategic merge of a {kind} (no schema) is not supported"
            matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
            assert len(matches) == 1, f"{directory}: patch {kind}/{name} matches {len(matches)} objects"
            strategic_merge(matches[0], patch)
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in _pod_containers(obj):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    for replicas in kustomization.get("replicas", []):
        matches = [
            o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == replicas["name"]
        ]
        assert len(matches) == 1, f"{directory}: replicas for {replicas['name']} match {len(matches)}"
        matches[0]["spec"]["replicas"] = replicas["count"]
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in _CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {target: render(K8S / target) for target in TARGETS}


def by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


# --------------------------------------------------------------------------------------------------
# What the code says: settings, routes, consumer groups
# --------------------------------------------------------------------------------------------------


@dataclass
class ServiceFacts:
    name: str  # as in SERVICES and the image: dlq-replay
    module: str  # rastro_dlq_replay
    settings_cls: type[KitSettings]
    env_names: set[str]
    http_port: int
    get_routes: set[str]
    groups: dict[str, tuple[tuple[str, ...], str | None]]  # group id → (topics, topic pattern)
    migrations: tuple[str, ...]


def settings_env_names(cls: type[KitSettings]) -> set[str]:
    """The environment variables pydantic-settings reads for ``cls``."""
    prefix = cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}")
    return {n.upper() for n in names}


def _settings_class(module: str) -> type[KitSettings]:
    settings_module = importlib.import_module(f"{module}.settings")
    found = [
        obj
        for obj in vars(settings_module).values()
        if inspect.isclass(obj)
        and issubclass(obj, KitSettings)
        and obj is not KitSettings
        and obj.__module__ == settings_module.__name__
    ]
    assert len(found) == 1, f"{module}.settings: expected one KitSettings subclass, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def services() -> dict[str, ServiceFacts]:
    facts: dict[str, ServiceFacts] = {}
    for name in SERVICES:
        module = "rastro_" + name.replace("-", "_")
        settings_cls = _settings_class(module)
        app = importlib.import_module(f"{module}.app").build_app(settings_cls())
        runtime = app.state.runtime
        groups: dict[str, tuple[tuple[str, ...], str | None]] = {}
        for spec in runtime.definition.consumers(runtime):
            groups[spec.group_id or runtime.service] = (tuple(spec.topics), spec.topic_pattern)
        routes = {r.path for r in app.routes if "GET" in (getattr(r, "methods", None) or ())}
        facts[name] = ServiceFacts(
            name=name,
            module=module,
            settings_cls=settings_cls,
            env_names=settings_env_names(settings_cls),
            http_port=settings_cls.model_fields["http_port"].default,
            get_routes=routes,
            groups=groups,
            migrations=tuple(runtime.definition.migrations),
        )
    return facts


def partitions_of(topic: str) -> int:
    return {spec.name: spec.partitions for spec in all_topics()}[topic]


# --------------------------------------------------------------------------------------------------
# 1. yamllint
# --------------------------------------------------------------------------------------------------


def test_yamllint_passes_on_every_file() -> None:
    files = sorted(str(p) for p in K8S.rglob("*.yaml"))
    assert len(files) >= 10
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(K8S / ".yamllint"), *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------------
# 2. rendering, and the renderer against the real kustomize
# --------------------------------------------------------------------------------------------------


def test_every_target_renders_the_five_services(rendered: dict[str, list[Obj]]) -> None:
    for target, objects in rendered.items():
        keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
        assert len(keys) == len(set(keys)), f"{target}: duplicate objects"
        for kind in ("Deployment", "Service", "PodDisruptionBudget"):
            assert set(by_kind(objects, kind)) == {f"rastro-{s}" for s in SERVICES}, (target, kind)
        assert set(by_kind(objects, "Job")) == {"rastro-migrate"}


def _canonical(objects: list[Obj]) -> dict[tuple[str, str], str]:
    def sort_env(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: sort_env(v) for k, v in node.items()}
        if isinstance(node, list):
            items = [sort_env(v) for v in node]
            if items and all(isinstance(i, dict) and ("value" in i or "valueFrom" in i) for i in items):
                return sorted(items, key=lambda i: str(i.get("name")))
            return items
        return node

    return {(o["kind"], o["metadata"]["name"]): json.dumps(sort_env(o), sort_keys=True) for o in objects}


@pytest.mark.parametrize("target", TARGETS)
def test_renderer_agrees_with_kubectl_kustomize(target: str, rendered: dict[str, list[Obj]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed: the own renderer stands alone")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    theirs = _canonical([d for d in yaml.safe_load_all(result.stdout) if d])
    ours = _canonical(rendered[target])
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert json.loads(ours[key]) == json.loads(theirs[key]), key


# --------------------------------------------------------------------------------------------------
# 3. schemas
# --------------------------------------------------------------------------------------------------

_DURATION = {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_KAFKA_METADATA = {
    "type": "object",
    "additionalProperties": {"type": "string"},  # KEDA trigger metadata values are all strings
    "required": ["consumerGroup", "lagThreshold"],
    "oneOf": [{"required": ["bootstrapServers"]}, {"required": ["bootstrapServersFromEnv"]}],
    "properties": {
        "lagThreshold": {"type": "string", "pattern": r"^[1-9][0-9]*$"},
        "offsetResetPolicy": {"enum": ["earliest", "latest"]},
        "sasl": {"enum": ["none", "plaintext", "scram_sha256", "scram_sha512", "oauthbearer", "gssapi"]},
        "tls": {"enum": ["enable", "disable"]},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}},
}
CRD_SCHEMAS: dict[tuple[str, str], Obj] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "properties": {
                    "jobLabel": {"type": "string"},
                    "selector": {
                        "type": "object",
                        "required": ["matchLabels"],
                        "properties": {"matchLabels": _STRING_MAP},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port"],
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string", "pattern": "^/"},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "honorLabels": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}},
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "advanced": {"type": "object"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": {"type": "string"},
                                "metadata": _STRING_MAP,
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}},
                                },
                            },
                            "if": {"properties": {"type": {"const": "kafka"}}},
                            "then": {"properties": {"metadata": _KAFKA_METADATA}},
                        },
                    },
                },
            },
        },
    },
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["secretTargetRef"],
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {
                                "parameter": {"type": "string"},
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
    },
}


def test_every_object_is_valid(rendered: dict[str, list[Obj]], monkeypatch: pytest.MonkeyPatch) -> None:
    # kubernetes_validate re-reads its JSON schemas on every call: read each file once (10x faster).
    utils = kubernetes_validate.utils
    monkeypatch.setattr(utils, "schema_contents", functools.lru_cache(maxsize=None)(utils.schema_contents))
    seen: set[str] = set()
    for target, objects in rendered.items():
        for obj in objects:
            canonical = json.dumps(obj, sort_keys=True)
            if canonical in seen:
                continue  # the same object in two targets: validate it once
            seen.add(canonical)
            where = f"{target}: {obj['kind']}/{obj['metadata']['name']}"
            crd = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
            if crd is not None:
                try:
                    jsonschema.Draft202012Validator(crd).validate(obj)
                except jsonschema.ValidationError as exc:
                    pytest.fail(f"{where}: {exc.message} at {list(exc.absolute_path)}")
                continue
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    pytest.fail(f"{where} (Kubernetes {version}): {exc}")


def test_the_crd_schemas_catch_a_broken_scaled_object(rendered: dict[str, list[Obj]]) -> None:
    scaled = copy.deepcopy(next(iter(by_kind(rendered["overlays/prod"], "ScaledObject").values())))
    schema = CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")]
    jsonschema.Draft202012Validator(schema).validate(scaled)
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 10000  # an int: KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(scaled)


# --------------------------------------------------------------------------------------------------
# 4. cross-checks against the code
# --------------------------------------------------------------------------------------------------


def _service_of(obj: Obj) -> str:
    name: str = obj["metadata"]["name"]
    assert name.startswith("rastro-"), name
    return name.removeprefix("rastro-")


def _env_of(container: Obj, objects: list[Obj]) -> set[str]:
    """Every variable the container gets: its env, the keys of ConfigMaps and Secrets it envFroms (those
    rendered here; external Secrets are checked through the keys that reference them)."""
    names = {e["name"] for e in container.get("env", [])}
    configmaps, secrets = by_kind(objects, "ConfigMap"), by_kind(objects, "Secret")
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(configmaps[source["configMapRef"]["name"]]["data"])
        elif source["secretRef"]["name"] in secrets:
            secret = secrets[source["secretRef"]["name"]]
            names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    return names


def test_every_environment_variable_is_a_setting(
    rendered: dict[str, list[Obj]], services: dict[str, ServiceFacts]
) -> None:
    for target, objects in rendered.items():
        workloads = [*by_kind(objects, "Deployment").values(), *by_kind(objects, "Job").values()]
        for workload in workloads:
            for container in _pod_containers(workload):
                unknown = _env_of(container, objects) - services[container["name"]].env_names
                assert not unknown, f"{target}: {container['name']} gets {sorted(unknown)}, not settings"
        # Keys of Secrets made outside the repo (prod), as KEDA and the containers reference them.
        for auth in by_kind(objects, "TriggerAuthentication").values():
            for ref in auth["spec"]["secretTargetRef"]:
                assert ref["key"] in settings_env_names(KitSettings), ref


def test_deployments_run_each_service_on_its_port_with_real_probe_paths(
    rendered: dict[str, list[Obj]], services: dict[str, ServiceFacts]
) -> None:
    for target, objects in rendered.items():
        for deployment in by_kind(objects, "Deployment").values():
            facts = services[_service_of(deployment)]
            pod = deployment["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            assert container["name"] == facts.name
            assert container["command"] == ["python", "-m", facts.module]
            assert importlib.util.find_spec(f"{facts.module}.__main__") is not None
            assert container["image"].split(":")[0].endswith(f"rastro/{facts.name}")
            env = {e["name"]: e.get("value") for e in container["env"]}
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["http"] == int(env["RASTRO_HTTP_PORT"]) == facts.http_port
            probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
            probes["readinessProbe"] = container["readinessProbe"]["httpGet"]
            assert probes["livenessProbe"]["path"] == "/healthz"
            assert probes["readinessProbe"]["path"] == "/readyz"
            for probe in probes.values():
                assert probe["path"] in facts.get_routes, (target, facts.name, probe)
                assert probe["port"] == "http"
            # No service-link variables (RASTRO_<SERVICE>_PORT=tcp://…) next to RASTRO_<SERVICE>_* settings.
            assert pod["enableServiceLinks"] is False
            assert pod["automountServiceAccountToken"] is False
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            service = by_kind(objects, "Service")[deployment["metadata"]["name"]]
            assert service["spec"]["selector"].items() <= labels.items()
            assert service["spec"]["ports"][0]["targetPort"] == "http"
            pdb = by_kind(objects, "PodDisruptionBudget")[deployment["metadata"]["name"]]
            assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
            assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_every_image_is_a_workspace_package_the_dockerfile_builds() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert '--package "rastro-${SERVICE}"' in dockerfile
    packages = {
        tomllib.loads(p.read_text(encoding="utf-8"))["project"]["name"]
        for p in (ROOT / "services").glob("*/pyproject.toml")
    }
    assert {f"rastro-{s}" for s in SERVICES} <= packages


def _quantity(value: str | int) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def test_every_container_has_requests_within_limits(rendered: dict[str, list[Obj]]) -> None:
    for target, objects in rendered.items():
        for workload in [*by_kind(objects, "Deployment").values(), *by_kind(objects, "Job").values()]:
            for container in _pod_containers(workload):
                resources = container["resources"]
                for resource in ("cpu", "memory"):
                    request = _quantity(resources["requests"][resource])
                    limit = _quantity(resources["limits"][resource])
                    assert 0 < request <= limit, (target, container["name"], resource)


def kit_shutdown_budget_s() -> float:
    """The longest ``Runtime.stop`` plus uvicorn's HTTP drain can take, read from the kit's source: the
    ``_bounded(step, seconds, …)`` steps, ``asyncio.wait(…, timeout=…)`` and ``timeout_graceful_shutdown``."""
    tree = ast.parse(inspect.getsource(kit_service))
    total = 0.0
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "stop":
            for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
                func = call.func
                if isinstance(func, ast.Name) and func.id == "_bounded":
                    total += ast.literal_eval(call.args[1])
                elif isinstance(func, ast.Attribute) and func.attr == "wait":
                    total += sum(ast.literal_eval(k.value) for k in call.keywords if k.arg == "timeout")
        if isinstance(node, ast.keyword) and node.arg == "timeout_graceful_shutdown":
            total += ast.literal_eval(node.value)
    return total


def on_stop_budget_s(service: str) -> float:
    """What a service's own ``on_stop`` may add: notification's dispatcher waits for its deliveries in
    flight (``Dispatcher.stop``: grace_s + 5)."""
    if service != "notification":
        return 0.0
    dispatcher = importlib.import_module("rastro_notification.dispatcher").Dispatcher
    grace_s: float = inspect.signature(dispatcher.__init__).parameters["grace_s"].default
    return grace_s + 5


def test_grace_period_covers_pre_stop_and_the_bounded_shutdown(rendered: dict[str, list[Obj]]) -> None:
    budget = kit_shutdown_budget_s()
    assert budget >= 40, f"could not read the kit's shutdown steps (found {budget} s): update this test"
    for target, objects in rendered.items():
        for deployment in by_kind(objects, "Deployment").values():
            pod = deployment["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            command = container["lifecycle"]["preStop"]["exec"]["command"]
            assert command[0] == "sleep"
            needed = float(command[1]) + budget + on_stop_budget_s(_service_of(deployment))
            assert pod["terminationGracePeriodSeconds"] >= needed + 5, (target, deployment["metadata"])


def test_keda_scales_each_consumer_group_up_to_its_partitions(
    rendered: dict[str, list[Obj]], services: dict[str, ServiceFacts]
) -> None:
    objects = rendered["overlays/prod"]
    scaled_objects = by_kind(objects, "ScaledObject")
    deployments = by_kind(objects, "Deployment")
    config = by_kind(objects, "ConfigMap")["rastro-config"]["data"]
    consumer_services = {name for name, facts in services.items() if facts.groups}
    assert {_service_of(s) for s in scaled_objects.values()} == consumer_services
    sasl = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
    for scaled in scaled_objects.values():
        facts = services[_service_of(scaled)]
        spec = scaled["spec"]
        deployment = deployments[spec["scaleTargetRef"]["name"]]
        assert spec["minReplicaCount"] == deployment["spec"]["replicas"] >= 2
        kafka = [t for t in spec["triggers"] if t["type"] == "kafka"]
        assert {t["metadata"]["consumerGroup"] for t in kafka} == set(facts.groups), facts.name
        for group, (topics, pattern) in facts.groups.items():  # normalization has two groups
            if pattern is None:
                work_topics = set(topics)
            else:  # the DLQ store: every DLQ its pattern takes, not its own retry tiers
                work_topics = {dlq_topic(s) for s in SERVICES if re.search(pattern, dlq_topic(s))}
            triggered = {t["metadata"]["topic"] for t in kafka if t["metadata"]["consumerGroup"] == group}
            assert triggered == work_topics, (facts.name, group)
            assert spec["maxReplicaCount"] == max(partitions_of(t) for t in work_topics)
            assert {partitions_of(t) for t in work_topics} == {spec["maxReplicaCount"]}
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for trigger in kafka:
            metadata = trigger["metadata"]
            assert metadata["bootstrapServersFromEnv"] in _env_of(container, objects)
            assert metadata["sasl"] == sasl[config["KAFKA_SASL_MECHANISM"]]
            assert (metadata["tls"] == "enable") == (config["KAFKA_SECURITY_PROTOCOL"] in {"SSL", "SASL_SSL"})
            assert metadata["offsetResetPolicy"] == "earliest"
            assert trigger["authenticationRef"]["name"] in by_kind(objects, "TriggerAuthentication")


def test_dev_is_single_replica_plaintext_without_autoscaling(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["overlays/dev"]
    assert all(d["spec"]["replicas"] == 1 for d in by_kind(objects, "Deployment").values())
    assert not by_kind(objects, "ScaledObject")
    assert by_kind(objects, "ConfigMap")["rastro-config"]["data"]["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    for secret in by_kind(objects, "Secret").values():
        assert all("CHANGE-ME" in value for value in secret["stringData"].values()), "placeholders only"


def test_prod_spreads_replicas_and_takes_secrets_from_outside(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["overlays/prod"]
    assert not by_kind(objects, "Secret"), "prod Secrets are created outside the repo"
    assert by_kind(objects, "ConfigMap")["rastro-config"]["data"]["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    for deployment in by_kind(objects, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
        assert deployment["spec"]["replicas"] >= 2
    (monitor,) = by_kind(objects, "ServiceMonitor").values()
    assert monitor["spec"]["selector"]["matchLabels"] == PART_OF
    # The alert rules select `up{job=~"ingest|…"}`: the job label must be the bare service name.
    alerts = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text(encoding="utf-8")
    for service in by_kind(objects, "Service").values():
        assert PART_OF.items() <= service["metadata"]["labels"].items()
        job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        assert job == _service_of(service) and job in alerts
        assert service["spec"]["ports"][0]["name"] == monitor["spec"]["endpoints"][0]["port"]


def test_migration_job_applies_each_services_own_migrations(
    rendered: dict[str, list[Obj]], services: dict[str, ServiceFacts]
) -> None:
    objects = rendered["base"]
    script_map = by_kind(objects, "ConfigMap")["rastro-migrate"]
    job = by_kind(objects, "Job")["rastro-migrate"]
    pod = job["spec"]["template"]["spec"]
    mounts = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    assert mounts == {"script": "rastro-migrate"}
    script = types.ModuleType("rastro_k8s_migrate")
    exec(compile(script_map["data"]["migrate.py"], "migrate.py", "exec"), script.__dict__)
    containers = _pod_containers(job)
    assert sorted(c["name"] for c in containers) == sorted(SERVICES)
    for container in containers:
        facts = services[container["name"]]
        assert container["image"] == f"rastro/{facts.name}:dev"
        python, path, app_target, settings_target = container["command"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "script")
        assert python == "python" and path == f"{mount['mountPath']}/migrate.py"
        settings, packages = script.definition(app_target, settings_target)
        assert settings.service_name == facts.name
        assert packages == facts.migrations
        assert load_migrations(*packages), f"{facts.name}: no migrations found in {packages}"
