"""The observability contract: every metric a Grafana dashboard or an alert rule reads is one the services
export, every PromQL expression there is well formed, the dashboards load, and the alert rules pass their
``promtool`` unit tests (deploy/prometheus/tests/) where promtool is available.

The registry is what importing every module of the kit and of the five services registers with
prometheus_client — the same registry each service's ``/metrics`` serves.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PACKAGES = (
    "rastro_kit",
    "rastro_ingest",
    "rastro_normalization",
    "rastro_eta",
    "rastro_notification",
    "rastro_dlq_replay",
)
SYNTHETIC = {"up"}  # written by Prometheus itself for every scrape target
REQUIRED_ALERTS = {  # issue 9: DLQ growing, lag, webhook success, API 5xx, endpoint disabled, circuit open
    "RastroDeadLettersGrowing",
    "RastroConsumerLagHigh",
    "RastroWebhookSuccessLow",
    "RastroHttpErrors",
    "RastroWebhookEndpointDisabled",
    "RastroCarrierCircuitOpen",
}
REQUIRED_DASHBOARDS = {"rastro-integration-health", "rastro-service-performance", "rastro-kpis"}

FUNCTIONS = set(
    "abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max"
    " clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv"
    " exp floor histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev"
    " histogram_stdvar histogram_sum holt_winters hour idelta increase irate label_join label_replace"
    " last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi"
    " predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort"
    " sort_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year"
    # aggregation operators
    " avg bottomk count count_values group max min quantile stddev stdvar sum topk".split()
)
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
KEYWORDS |= {"offset", "atan2", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<query>[^,]+?)\s*,)?\s*\w+\s*\)\s*$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads; raises ``ValueError`` if it is malformed."""
    label_values = _LABEL_VALUES.match(expr)  # Grafana's variable query, not PromQL
    if label_values:
        return metric_names(label_values["query"]) if label_values["query"] else set()
    bare = _STRING.sub('""', expr)
    if re.search(r"[\"'`]", _STRING.sub("", expr)):
        raise ValueError(f"unterminated string in {expr!r}")
    depth: list[str] = []
    for char in bare:
        if char in "([{":
            depth.append({"(": ")", "[": "]", "{": "}"}[char])
        elif char in ")]}" and (not depth or depth.pop() != char):
            raise ValueError(f"unbalanced {char!r} in {expr!r}")
    if depth:
        raise ValueError(f"unclosed {depth[-1]!r} in {expr!r}")
    bare = _RANGE.sub(" ", _MATCHERS.sub(" ", bare))
    bare = _GROUPING.sub(" ", bare)
    names: set[str] = set()
    for match in _IDENT.finditer(bare):
        name, call = match.group(1), match.group(2)
        if call:
            if name not in FUNCTIONS:
                raise ValueError(f"unknown function {name}() in {expr!r}")
        elif name not in KEYWORDS:
            names.add(name)
    if not names and "vector(" not in bare and "time(" not in bare:
        raise ValueError(f"no metric in {expr!r}")
    return names


@cache
def exported_names() -> frozenset[str]:
    """Every series name the services can expose: the registry's families with their type's suffixes."""
    for package in PACKAGES:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return frozenset(names)


def missing_metrics(expr: str) -> set[str]:
    return metric_names(expr) - exported_names() - SYNTHETIC


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return found


def dashboard_exprs() -> list[tuple[str, str]]:
    exprs: list[tuple[str, str]] = []
    for name, board in dashboards().items():
        for panel in panels(board):
            exprs.extend((f"{name}: {panel['title']}", t["expr"]) for t in panel.get("targets", []))
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]
                exprs.append((f"{name}: ${variable['name']}", query.get("query", query)))
    return exprs


# -- the cross-check -----------------------------------------------------------------------------------------


def test_the_registry_holds_the_design_metrics_and_the_checker_rejects_what_it_does_not() -> None:
    names = exported_names()
    for design in (  # DESIGN §9, and the gauges the alerts need
        "rastro_events_consumed_total",
        "rastro_event_handle_seconds_bucket",
        "rastro_consumer_lag",
        "rastro_dlq_messages_total",
        "rastro_outbox_pending",
        "rastro_http_requests_total",
        "rastro_webhook_attempts_total",
        "rastro_webhook_latency_seconds_bucket",
        "rastro_webhook_endpoints_auto_disabled_total",
        "rastro_carrier_circuit_open",
    ):
        assert design in names
    assert missing_metrics("sum(rate(rastro_not_a_metric_total[5m]))") == {"rastro_not_a_metric_total"}
    assert missing_metrics("rastro_consumer_lag_bucket") == {"rastro_consumer_lag_bucket"}  # a gauge has none
    assert (
        missing_metrics("histogram_quantile(0.9, sum by (le) (rate(rastro_event_handle_seconds_bucket[5m])))")
        == set()
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (service, topic) (rate(a_total{code=~"5..", x="}"}[5m])) / on (service) b',
            {"a_total", "b"},
        ),
        ("max(x) by (le) > bool 3 and y offset 5m unless z", {"x", "y", "z"}),
        ("label_values(rastro_http_requests_total, service)", {"rastro_http_requests_total"}),
        ('label_values(x{service="a"}, topic)', {"x"}),
        ("vector(0.95)", set()),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


@pytest.mark.parametrize(
    "expr", ["sum(rate(x[5m])", "sum(x))", "rate(x[5m)", 'x{a="b}', "summ(x)", "x{a='b'"]
)
def test_malformed_promql_is_rejected(expr: str) -> None:
    with pytest.raises(ValueError):
        metric_names(expr)


def test_every_alert_rule_reads_only_exported_metrics() -> None:
    rules = alert_rules()
    read = {name for rule in rules for name in metric_names(rule["expr"])}
    assert len(read) >= 8, read
    missing = {rule["alert"]: missing_metrics(rule["expr"]) for rule in rules}
    assert not {alert: names for alert, names in missing.items() if names}


def test_every_dashboard_panel_reads_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 30 and {n for _, e in exprs for n in metric_names(e)} >= {
        "rastro_consumer_lag",
        "rastro_outbox_pending",
        "rastro_dlq_messages_total",
        "rastro_webhook_attempts_total",
    }
    missing = {where: missing_metrics(expr) for where, expr in exprs}
    assert not {where: names for where, names in missing.items() if names}


# -- alert rules ---------------------------------------------------------------------------------------------


def test_the_alert_rules_cover_the_issue_and_point_at_their_runbook() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    runbook = (ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    anchors = {h.strip().lower() for h in re.findall(r"^#+ (Rastro\w+)\s*$", runbook, re.MULTILINE)}
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys(), rule["alert"]
        assert rule["annotations"]["runbook"] == f"docs/observability.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in anchors, f"docs/observability.md has no section {rule['alert']}"
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", "0s"))), rule["alert"]


def promtool() -> str | None:
    """``$PROMTOOL``, promtool on PATH, or the one in Debian's prometheus package, fetched once into
    .rastro/tools (the package is only downloaded and unpacked: nothing is installed or started)."""
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if found:
        return found
    tools = ROOT / ".rastro/tools/prometheus"
    cached = tools / "usr/bin/promtool"
    if cached.exists():
        return str(cached)
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return None
    tools.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["apt-get", "download", "prometheus"], cwd=tools, capture_output=True, timeout=180, check=True
        )
        (deb,) = tools.glob("prometheus_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tools)], capture_output=True, timeout=120, check=True)
        deb.unlink()
    except (subprocess.SubprocessError, ValueError, OSError):
        return None
    return str(cached) if cached.exists() else None


def test_promtool_checks_and_unit_tests_the_alert_rules(tmp_path: Path) -> None:
    tool = promtool()
    if tool is None:
        pytest.skip(
            "promtool not found and Debian's prometheus package could not be fetched (set PROMTOOL);"
            " the parser tests ran"
        )
    checked = subprocess.run(
        [tool, "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for test_file in sorted((PROMETHEUS / "tests").glob("*.yml")):
        result = subprocess.run(
            [tool, "test", "rules", str(test_file.relative_to(PROMETHEUS))],
            cwd=PROMETHEUS,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    # promtool parses the dashboards' PromQL too, once Grafana's variables are given values.
    grafana_vars = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m", "$service": ".*"}
    rules = []
    for i, (_, expr) in enumerate(e for e in dashboard_exprs() if not _LABEL_VALUES.match(e[1])):
        for var, value in grafana_vars.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    (tmp_path / "dashboards.yml").write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]}))
    parsed = subprocess.run(
        [tool, "check", "rules", "dashboards.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr


# -- dashboards ----------------------------------------------------------------------------------------------


def test_the_dashboards_load_in_grafana_with_the_provisioned_datasource() -> None:
    boards = dashboards()
    assert {b["uid"] for b in boards.values()} >= REQUIRED_DASHBOARDS
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/rastro.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    for name, board in boards.items():
        assert board["schemaVersion"] >= 36 and board["title"] and board["panels"], name
        (datasource,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
        assert datasource["query"] == "prometheus", name
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in panels(board):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0, f"{name}: {panel['title']}"
            for target in [panel, *panel.get("targets", [])]:
                if "datasource" in target and panel["type"] != "row":
                    assert target["datasource"]["uid"] == "${" + datasource["name"] + "}", panel["title"]
