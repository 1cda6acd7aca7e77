"""deploy/k8s: every manifest parses, and names, selectors, labels and ports agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clickstream.settings import SETTINGS

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SETTING_ENV = {f"CLICKSTREAM_{s.name.upper()}" for s in SETTINGS}


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs() if d["kind"] == kind}


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kust["resources"]) == files


def test_kinds() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in _docs())
    assert kinds == [
        ("ConfigMap", "clickstream-config"),
        ("Deployment", "clickstream-collector"),
        ("Deployment", "clickstream-dashboard"),
        ("Deployment", "clickstream-sessionizer"),
        ("HorizontalPodAutoscaler", "clickstream-collector"),
        ("Ingress", "clickstream"),
        ("Job", "clickstream-migrate"),
        ("Namespace", "clickstream"),
        ("Secret", "clickstream-secrets"),
        ("Service", "clickstream-collector"),
        ("Service", "clickstream-dashboard"),
    ]


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def test_deployment_selectors_match_their_pods_and_no_other() -> None:
    deployments = _by_kind("Deployment")
    for name, dep in deployments.items():
        selector = dep["spec"]["selector"]["matchLabels"]
        assert selector.items() <= _pod_labels(dep).items(), name
        role = name.removeprefix("clickstream-")
        assert selector["app.kubernetes.io/component"] == role
        assert dep["metadata"]["labels"] == _pod_labels(dep)
        others = [n for n, d in deployments.items() if n != name]
        assert not any(selector.items() <= _pod_labels(deployments[o]).items() for o in others)
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [role]


def test_services_select_one_deployment_and_a_named_port() -> None:
    deployments = _by_kind("Deployment")
    for name, svc in _by_kind("Service").items():
        selector = svc["spec"]["selector"]
        matched = [n for n, d in deployments.items() if selector.items() <= _pod_labels(d).items()]
        assert matched == [name], name
        ports = deployments[name]["spec"]["template"]["spec"]["containers"][0]["ports"]
        names = {p["name"] for p in ports}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= names


def test_hpa_scales_the_collector() -> None:
    hpa = _by_kind("HorizontalPodAutoscaler")["clickstream-collector"]
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
        "apps/v1", "Deployment", "clickstream-collector"
    )  # fmt: skip
    assert ref["name"] in _by_kind("Deployment")
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_every_pod_gets_config_and_secret_with_declared_settings() -> None:
    config = _by_kind("ConfigMap")["clickstream-config"]["data"]
    secret = _by_kind("Secret")["clickstream-secrets"]["stringData"]
    assert set(secret) == {"CLICKSTREAM_API_TOKEN", "CLICKSTREAM_CLICKHOUSE"}
    assert config["CLICKSTREAM_KAFKA_IDEMPOTENCE"] == "on"
    names = {k for k in [*config, *secret] if k.startswith("CLICKSTREAM_")}
    assert names - SETTING_ENV == set()
    workloads = [*_by_kind("Deployment").values(), *_by_kind("Job").values()]
    assert len(workloads) == 4
    for w in workloads:
        container = w["spec"]["template"]["spec"]["containers"][0]
        refs = [next(iter(r.values()))["name"] for r in container["envFrom"]]
        assert refs == ["clickstream-config", "clickstream-secrets"]
        env = {e["name"] for e in container.get("env", [])}
        assert {n for n in env if n.startswith("CLICKSTREAM_")} <= SETTING_ENV
        assert container["image"] == "clickstream:latest"


def test_migrate_job_and_ingress() -> None:
    job = _by_kind("Job")["clickstream-migrate"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    assert pod["containers"][0]["args"] == ["migrate"]
    ingress = _by_kind("Ingress")["clickstream"]
    routes = {
        p["path"]: p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert routes == {
        "/p.gif": "clickstream-collector", "/collect": "clickstream-collector",
        "/r": "clickstream-collector", "/optout": "clickstream-collector",
        "/t.js": "clickstream-collector", "/": "clickstream-dashboard",
    }  # fmt: skip
    assert set(routes.values()) <= set(_by_kind("Service"))
