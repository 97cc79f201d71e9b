"""deploy/compose.yaml: a valid compose file whose every command is one pnsq accepts, wired
as the seed topology (3 nsqd on their own volumes, each on both lookupds; the admin on both)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pnsq_args import parse

COMPOSE = Path(__file__).parents[2] / "deploy" / "compose.yaml"
SERVICES: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
LOOKUPDS = sorted(name for name in SERVICES if SERVICES[name]["command"][0] == "lookupd")
NSQDS = sorted(name for name in SERVICES if SERVICES[name]["command"][0] == "nsqd")


def test_the_compose_specification_schema_accepts_it() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_pnsq_accepts_every_command_line(service: str) -> None:
    parse(SERVICES[service]["command"])


def test_the_seed_topology() -> None:
    assert len(NSQDS) == 3
    assert len(LOOKUPDS) == 2
    assert [SERVICES[name]["command"][0] for name in SERVICES].count("admin") == 1


@pytest.mark.parametrize("service", NSQDS)
def test_each_nsqd_is_reachable_by_its_service_name_on_both_lookupds(service: str) -> None:
    options = parse(SERVICES[service]["command"])
    assert options.broadcast_address == service  # NSQ #1173: never the container's hostname
    lookupds = {address.partition(":")[0] for address in options.nsqlookupd_tcp_addresses}
    assert lookupds == set(LOOKUPDS)


def test_each_nsqd_keeps_its_messages_in_its_own_named_volume() -> None:
    volumes = [SERVICES[name]["volumes"] for name in NSQDS]
    assert all(len(mounts) == 1 and mounts[0].endswith(":/data") for mounts in volumes)
    named = [mounts[0].split(":")[0] for mounts in volumes]
    assert len(set(named)) == len(NSQDS)
    assert set(named) <= set(yaml.safe_load(COMPOSE.read_text())["volumes"])
    assert all(parse(SERVICES[name]["command"]).data_path == "/data" for name in NSQDS)


def test_the_admin_finds_the_nodes_through_both_lookupds() -> None:
    admin = next(name for name in SERVICES if SERVICES[name]["command"][0] == "admin")
    options = parse(SERVICES[admin]["command"])
    assert {address.partition(":")[0] for address in options.lookupd_http_addresses} == set(
        LOOKUPDS
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_restarts_and_is_health_checked_on_its_own_port(service: str) -> None:
    config = SERVICES[service]
    assert config["restart"] in {"always", "unless-stopped", "on-failure"}
    assert "healthcheck" in config
    port = {"nsqd": "4151", "lookupd": "4161", "admin": "4171"}[config["command"][0]]
    assert config.get("environment", {}).get("PNSQ_HEALTHCHECK_PORT", "4151") == port
