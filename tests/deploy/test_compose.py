"""deploy/compose.yaml against the Compose Specification schema, and against our own parts.

No Docker engine exists here, so the file is checked by the compose-spec JSON schema
(vendored in tests/deploy/data, origin in its README), by cross-references between
services, and nginx's own ``nginx -t`` on the proxy config.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bench.common import which
from clickstream.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
ROLES = {"collector", "sessionizer", "dashboard", "migrate"}
SETTING_ENV = {f"CLICKSTREAM_{s.name.upper()}" for s in SETTINGS}


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(SCHEMA)
    return sorted(f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc))


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    assert _errors(_compose()) == []


def test_schema_catches_a_bad_compose_file() -> None:
    doc = _compose()
    doc["services"]["kafka"]["restart_policy"] = "always"  # not a service key
    doc["services"]["proxy"]["ports"] = "8080:80"  # must be a list
    errors = _errors(doc)
    assert len(errors) == 2
    assert any("restart_policy" in e for e in errors)
    assert any(e.startswith("['services', 'proxy', 'ports']") for e in errors)


def test_services_are_the_documented_topology() -> None:
    services = _compose()["services"]
    assert sorted(services) == [
        "clickhouse", "collector-1", "collector-2", "dashboard", "kafka", "migrate", "proxy",
        "sessionizer-1", "sessionizer-2",
    ]  # fmt: skip
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    roles = {name: svc["command"][0] for name, svc in services.items() if "build" in svc}
    assert roles == {
        "migrate": "migrate", "collector-1": "collector", "collector-2": "collector",
        "sessionizer-1": "sessionizer", "sessionizer-2": "sessionizer", "dashboard": "dashboard",
    }  # fmt: skip
    assert set(roles.values()) == ROLES


def test_roles_reach_kafka_and_clickhouse_and_wait_for_migrate() -> None:
    services = _compose()["services"]
    for name, svc in services.items():
        if "build" not in svc:
            continue
        env = svc["environment"]
        assert env["CLICKSTREAM_KAFKA"] == "kafka:9092", name
        assert re.fullmatch(r"http://clickstream:\$\{CLICKHOUSE_PASSWORD:\?[^}]+\}@clickhouse:8123",
                            env["CLICKSTREAM_CLICKHOUSE"]), name  # fmt: skip
        assert env["CLICKSTREAM_KAFKA_IDEMPOTENCE"] == "on", name
        assert env["CLICKSTREAM_API_TOKEN"].startswith("${CLICKSTREAM_API_TOKEN:?"), name
        expected = {"clickhouse"} if name == "migrate" else {"kafka", "clickhouse", "migrate"}
        assert set(svc["depends_on"]) == expected, name
    assert services["dashboard"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }


def test_every_clickstream_variable_is_a_declared_setting() -> None:
    services = _compose()["services"]
    used = {k for svc in services.values() for k in svc.get("environment", {})}
    clickstream_vars = {k for k in used if k.startswith("CLICKSTREAM_")}
    assert clickstream_vars - SETTING_ENV == set()
    assert "CLICKSTREAM_WORKERS" in clickstream_vars


def test_references_resolve() -> None:
    doc = _compose()
    services = doc["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        assert set(deps) <= set(services), name
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), f"{name}: {source}"
            else:
                assert source in doc["volumes"], f"{name}: {source}"
        if "build" in svc:
            assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    upstreams = re.findall(r"server\s+([\w-]+):8000", (DEPLOY / "nginx.conf").read_text())
    assert upstreams == ["collector-1", "collector-2", "dashboard"]
    assert set(upstreams) <= set(services)


def test_dockerfile_copies_what_exists_and_drops_root() -> None:
    lines = [ln.strip() for ln in (DEPLOY / "Dockerfile").read_text().splitlines()]
    copies = [ln.split()[1:-1] for ln in lines if ln.startswith("COPY ") and "--from" not in ln]
    sources = [src for srcs in copies for src in srcs]
    assert sources == ["pyproject.toml", "README.md", "clickstream", "collector", "sessionizer",
                       "reports"]  # fmt: skip
    assert all((ROOT / src).exists() for src in sources)
    assert "USER clickstream" in lines
    assert 'ENTRYPOINT ["clickstream"]' in lines


def test_proxy_config_passes_nginx_syntax_check(tmp_path: Path) -> None:
    nginx = which("nginx")
    assert nginx is not None, "nginx is a test dependency (apt-get install nginx-light)"
    conf = (DEPLOY / "nginx.conf").read_text()
    # Service names only resolve inside compose; the port 80 is not bound by -t.
    conf = re.sub(r"server\s+[\w-]+:8000", "server 127.0.0.1:8000", conf)
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\n{conf}")
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
         "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


@pytest.mark.parametrize("path", ["/p.gif", "/collect", "/r", "/optout", "/t.js"])
def test_proxy_routes_tracking_paths_to_collectors(path: str) -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    pattern = re.search(r"location ~ (\S+) \{\s*proxy_pass http://collectors;", conf)
    assert pattern is not None
    assert re.match(pattern.group(1), path)
    assert not re.match(pattern.group(1), "/api/reports/funnel")


def test_kraft_cluster_id_is_a_kafka_uuid() -> None:
    import base64

    cluster_id = _compose()["services"]["kafka"]["environment"]["CLUSTER_ID"]
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
