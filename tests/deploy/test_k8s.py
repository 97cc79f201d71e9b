"""deploy/k8s: every manifest valid for Kubernetes (strict schemas), every container's args
accepted by pnsq, and the wiring the seed topology relies on: each nsqd on every lookupd pod
by name, its pod IP as broadcast address, its own volume, probes on /ping, a drain before
SIGTERM with time for it, at most one nsqd down at a time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pnsq_args import parse

K8S = Path(__file__).parents[2] / "deploy" / "k8s"
KUBERNETES = "1.37.0"  # a version kubernetes-validate ships schemas for
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
DOCS: list[dict[str, Any]] = [
    doc
    for name in KUSTOMIZATION["resources"]
    for doc in yaml.safe_load_all((K8S / name).read_text())
]
# what the downward API gives a pod, for expanding $(VAR) in args as the kubelet does
SAMPLE_FIELDS = {"status.podIP": "10.1.2.3", "metadata.name": "pnsq-x-0"}


def _resource(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name)


def _pod(kind: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = _resource(kind, name)["spec"]["template"]["spec"]
    return pod


def _argv(container: dict[str, Any]) -> list[str]:
    env = {
        var["name"]: var.get("value") or SAMPLE_FIELDS[var["valueFrom"]["fieldRef"]["fieldPath"]]
        for var in container.get("env", [])
    }

    def expand(match: re.Match[str]) -> str:
        assert match[1] in env, f"$({match[1]}) is not defined in {container['name']}'s env"
        return env[match[1]]

    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", expand, arg) for arg in container["args"]]


def _options(kind: str, name: str) -> Any:
    return parse(_argv(_pod(kind, name)["containers"][0]))


def test_the_kustomization_lists_every_manifest_here() -> None:
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == files


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_resource_is_valid_for_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The check above is worth something: a misspelt field fails it."""
    service = {**_resource("Service", "pnsq-admin"), "spce": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES, strict=True)


@pytest.mark.parametrize(
    "workload",
    [d for d in DOCS if d["kind"] in {"StatefulSet", "Deployment"}],
    ids=lambda d: d["metadata"]["name"],
)
def test_pnsq_accepts_every_containers_args(workload: dict[str, Any]) -> None:
    for container in workload["spec"]["template"]["spec"]["containers"]:
        assert "command" not in container  # the image's entrypoint is pnsq
        parse(_argv(container))


def _lookupd_pods() -> list[str]:
    lookupd = _resource("StatefulSet", "pnsq-lookupd")
    service = lookupd["spec"]["serviceName"]
    assert _resource("Service", service)["spec"]["clusterIP"] == "None"  # pod DNS names
    return [f"pnsq-lookupd-{i}.{service}" for i in range(lookupd["spec"]["replicas"])]


def test_the_seed_topology() -> None:
    assert _resource("StatefulSet", "pnsq-lookupd")["spec"]["replicas"] == 2
    assert _resource("StatefulSet", "pnsq-nsqd")["spec"]["replicas"] == 3
    assert _resource("Deployment", "pnsq-admin")["spec"]["replicas"] == 1


def test_each_nsqd_registers_its_pod_ip_with_every_lookupd_pod() -> None:
    options = _options("StatefulSet", "pnsq-nsqd")
    assert options.broadcast_address == SAMPLE_FIELDS["status.podIP"]
    assert sorted(options.nsqlookupd_tcp_addresses) == [f"{p}:4160" for p in _lookupd_pods()]


def test_the_admin_asks_every_lookupd_pod() -> None:
    options = _options("Deployment", "pnsq-admin")
    assert sorted(options.lookupd_http_addresses) == [f"{p}:4161" for p in _lookupd_pods()]


def test_each_nsqd_keeps_its_messages_on_its_own_volume() -> None:
    nsqd = _resource("StatefulSet", "pnsq-nsqd")
    claims = {claim["metadata"]["name"] for claim in nsqd["spec"]["volumeClaimTemplates"]}
    mounts = nsqd["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    data_path = _options("StatefulSet", "pnsq-nsqd").data_path
    assert [m["mountPath"] for m in mounts if m["name"] in claims] == [data_path]


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
def test_nsqd_is_probed_on_ping(probe: str) -> None:
    container = _pod("StatefulSet", "pnsq-nsqd")["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    check = container[probe]["httpGet"]
    assert check["path"] == "/ping"
    assert ports[check["port"]] == 4151


def test_nsqd_drains_before_sigterm_with_time_to_do_it() -> None:
    pod = _pod("StatefulSet", "pnsq-nsqd")
    assert pod["terminationGracePeriodSeconds"] >= 60
    hook = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert "/state/drain" in hook[-1]
    assert 'method="PUT"' in hook[-1]
    # a drain consumers cannot finish ends (and saves the rest) before Kubernetes kills the pod,
    # with time left for the flush to the volume
    options = parse(_argv(pod["containers"][0]))
    assert 0 < options.drain_timeout <= pod["terminationGracePeriodSeconds"] - 20


def test_at_most_one_nsqd_is_disrupted_at_a_time() -> None:
    budget = next(d for d in DOCS if d["kind"] == "PodDisruptionBudget")
    labels = _resource("StatefulSet", "pnsq-nsqd")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_every_container_asks_for_resources_and_runs_unprivileged() -> None:
    for doc in DOCS:
        if doc["kind"] not in {"StatefulSet", "Deployment"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.fixture
def nsqd_http(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pnsq",
            "nsqd",
            "--tcp-address=127.0.0.1:0",
            "--http-address=127.0.0.1:0",
            f"--data-path={tmp_path}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        while not (found := re.search(r"HTTP: listening on [\d.]+:(\d+)", proc.stderr.readline())):
            assert proc.poll() is None, "nsqd exited"
        yield proc, int(found[1])
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.timeout(30)
def test_the_prestop_hook_drains_nsqd_and_returns_once_it_has_exited(
    nsqd_http: tuple[subprocess.Popen[str], int],
) -> None:
    """The hook asks for the drain and waits for nsqd's own exit (0), so SIGTERM, which comes
    after the hook, never cuts a drain short."""
    proc, port = nsqd_http
    command = _pod("StatefulSet", "pnsq-nsqd")["containers"][0]["lifecycle"]["preStop"]["exec"]
    python, flag, script = command["command"]
    assert (python, flag) == ("python", "-c")
    script = script.replace("127.0.0.1:4151", f"127.0.0.1:{port}")
    assert subprocess.run([sys.executable, "-c", script], timeout=15).returncode == 0
    assert proc.wait(timeout=10) == 0  # nothing to deliver: drained, exited by itself
