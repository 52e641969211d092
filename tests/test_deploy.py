"""deploy/: the Kubernetes manifest and its image agree with each other and with mockllm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mockllm.duration import parse_duration
from mockllm.loader import parse_scenarios

from .conftest import ROOT
from .served import Served

DEPLOY = ROOT / "deploy"


def manifests() -> dict[str, Any]:
    documents = yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text(encoding="utf-8"))
    return {doc["kind"]: doc for doc in documents}


def container() -> dict[str, Any]:
    (only,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(only)


def entrypoint() -> list[str]:
    (line,) = [x for x in (DEPLOY / "Dockerfile").read_text().splitlines() if x.startswith("ENTRYPOINT")]
    return list(json.loads(line.removeprefix("ENTRYPOINT")))


def test_the_configmap_scenarios_are_valid() -> None:
    for name, text in manifests()["ConfigMap"]["data"].items():
        assert parse_scenarios(text, name), name


def test_ports_probes_and_grace_agree() -> None:
    kinds = manifests()
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    main = container()
    argv = entrypoint()
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # reachable on the pod network
    (port,) = main["ports"]
    assert int(argv[argv.index("--port") + 1]) == port["containerPort"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == port["name"]
    grace = parse_duration(main["args"][main["args"].index("--grace") + 1])
    assert grace < pod["terminationGracePeriodSeconds"]
    mount = main["volumeMounts"][0]["mountPath"]
    assert main["args"][main["args"].index("--scenario") + 1] == mount


@pytest.mark.functional
def test_the_pods_arguments_start_a_server_that_streams(tmp_path: Path) -> None:
    """The container's arguments, scenarios written from the ConfigMap, on a loopback port."""
    for name, text in manifests()["ConfigMap"]["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    args = [
        str(tmp_path) if a == container()["volumeMounts"][0]["mountPath"] else a for a in container()["args"]
    ]
    server = Served(*args, "--time-scale", "0")
    try:
        assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
        chat = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{server.url}/v1/chat/completions", json=chat).json()
        assert answer["choices"][0]["message"]["content"] == "Streaming, one rune at a time."
        chat["model"] = "rate-limited"
        assert httpx.post(f"{server.url}/v1/chat/completions", json=chat).status_code == 429
    finally:
        code, stderr = server.stop()
    assert code == 0, stderr
