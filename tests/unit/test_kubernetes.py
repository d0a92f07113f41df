"""deploy/kubernetes, checked without a cluster: every manifest parses, and the invariants
that only show at run time hold (probes on real endpoints, a stable instance id per
pod, settings that exist, a dashboard on metrics the processor exports)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from eos.cli.envcheck import known

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    """Every resource the kustomization applies, by kind."""
    kustomization = _docs("kustomization.yaml")[0]
    out: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in _docs(name):
            assert doc["apiVersion"] and doc["metadata"]["name"], name
            out[doc["kind"]] = doc
    return out


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def _config(manifests: dict[str, dict[str, Any]]) -> dict[str, str]:
    return manifests["ConfigMap"]["data"]  # type: ignore[no-any-return]


def test_every_manifest_in_the_folder_parses_and_is_applied_or_an_example() -> None:
    applied = set(_docs("kustomization.yaml")[0]["resources"])
    for path in DEPLOY.glob("*.yaml"):
        assert _docs(path.name), path
        assert path.name in applied | {"kustomization.yaml", "secret.example.yaml"}, path


def test_probes_point_at_the_processor_s_real_endpoints_on_its_metrics_port(
    manifests: dict[str, dict[str, Any]],
) -> None:
    container = _container(manifests["StatefulSet"])
    port = int(_config(manifests)["EOS_METRICS_PORT"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == port
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    server = (ROOT / "eos" / "ops" / "server.py").read_text()
    for path in ("/readyz", "/healthz", "/metrics"):
        assert f'"{path}"' in server, f"the metrics server answers no {path}"


def test_each_pod_s_instance_id_is_its_stable_name(manifests: dict[str, dict[str, Any]]) -> None:
    workload = manifests["StatefulSet"]
    env = {e["name"]: e for e in _container(workload).get("env", [])}
    assert env["EOS_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "EOS_INSTANCE_ID" not in _config(manifests)  # one id for all would fence them
    state = _config(manifests)["EOS_STATE_DIR"]
    mounts = {m["name"]: m["mountPath"] for m in _container(workload)["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in workload["spec"]["volumeClaimTemplates"]}
    assert any(mounts.get(claim) == state for claim in claims), "state must be per pod"


def test_every_eos_variable_is_a_setting(manifests: dict[str, dict[str, Any]]) -> None:
    names = set(_config(manifests))
    for kind in ("StatefulSet", "Job"):
        names |= {e["name"] for e in _container(manifests[kind]).get("env", [])}
    for doc in _docs("secret.example.yaml"):
        names |= {k for k in doc["stringData"] if k.startswith("EOS_")}
    unknown = {n for n in names if n.startswith("EOS_")} - known()
    assert not unknown


def test_secrets_come_from_a_secret_never_the_config_map(
    manifests: dict[str, dict[str, Any]],
) -> None:
    config = _config(manifests)
    assert not {k for k in config if "PASSWORD" in k or "BASIC_AUTH" in k}
    for kind in ("StatefulSet", "Job"):
        sources = _container(manifests[kind])["envFrom"]
        assert {"secretRef": {"name": "eos-credentials"}} in sources
        assert {"configMapRef": {"name": manifests["ConfigMap"]["metadata"]["name"]}} in sources


def test_the_setup_job_creates_the_ledger_before_processors_wait_for_it(
    manifests: dict[str, dict[str, Any]],
) -> None:
    assert _container(manifests["Job"])["args"] == ["ledger", "setup"]
    assert _config(manifests)["EOS_STARTUP_WAIT"] == "true"
    assert _container(manifests["StatefulSet"])["args"] == ["run", "ledger"]


def test_scrape_annotations_budget_and_service_select_the_processors(
    manifests: dict[str, dict[str, Any]],
) -> None:
    workload = manifests["StatefulSet"]
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == _config(manifests)["EOS_METRICS_PORT"]
    assert annotations["prometheus.io/path"] == "/metrics"
    budget = manifests["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["maxUnavailable"] == 1 < workload["spec"]["replicas"]
    service = manifests["Service"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["name"] == workload["spec"]["serviceName"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


def _exported_metrics() -> set[str]:
    """The series names /metrics exposes: counters get `_total`, histograms `_bucket`,
    `_sum` and `_count` (Prometheus's text format)."""
    source = (ROOT / "eos" / "engine" / "probe.py").read_text()
    names: set[str] = set()
    for kind, name in re.findall(
        r'(_counter|_gauge|_histogram|Counter|Gauge)\w*\(\s*"(eos_\w+)"', source
    ):
        if "ounter" in kind:
            names.add(f"{name}_total")
        elif "istogram" in kind:
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


def test_the_dashboard_shows_only_metrics_the_processor_exports() -> None:
    exported = _exported_metrics()
    assert "eos_input_records_total" in exported and "eos_consumer_lag_records" in exported
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\beos_\w+", target["expr"]))
    assert used and used <= exported, used - exported
    shown = {n.removesuffix("_total") for n in used}
    for wanted in ("eos_input_records", "eos_dead_letters", "eos_consumer_lag_records"):
        assert wanted in shown
