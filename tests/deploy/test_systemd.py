"""deploy/systemd: units systemd itself accepts (``systemd-analyze verify``, no unknown key) and
rates well sandboxed (``systemd-analyze security``), each ``Type=notify`` with the restart,
descriptor limit and user the README promises; their ExecStart lines and shipped config files
accepted by pnsq; the pnsq user created by the sysusers.d file."""

from __future__ import annotations

import importlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pnsq_args import config_of, parse

from pnsq.cli import table

SYSTEMD = Path(__file__).parents[2] / "deploy" / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))
INSTALLED_PNSQ = "/opt/pnsq/bin/pnsq"  # where the README's install steps put the command
ANALYZE = shutil.which("systemd-analyze")  # .ci/run installs systemd when it is missing
SANDBOX = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}


def _keys(unit: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> values, in order (a key may repeat)."""
    keys: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, eq, value = line.partition("=")
        assert eq, f"{unit.name}: not a key=value line: {raw!r}"
        keys.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return keys


def _exec_start(unit: Path) -> list[str]:
    argv = shlex.split(_keys(unit)["Service.ExecStart"][0])
    assert argv[0] == INSTALLED_PNSQ
    return argv[1:]


def test_there_is_a_unit_per_daemon() -> None:
    assert [unit.name for unit in UNITS] == [
        "pnsq-admin.service",
        "pnsq-lookupd.service",
        "pnsq-nsqd.service",
    ]


@pytest.fixture
def installed_units(tmp_path: Path) -> list[Path]:
    """The units as installed, except that ExecStart runs this checkout's pnsq (verify checks
    that the command exists and is executable)."""
    pnsq = Path(sys.executable).parent / "pnsq"
    assert pnsq.exists()
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(INSTALLED_PNSQ, str(pnsq)))
        copies.append(copy)
    return copies


def test_systemd_analyze_verify_accepts_every_unit(installed_units: list[Path]) -> None:
    assert ANALYZE, "systemd-analyze is missing: apt-get install systemd"
    result = subprocess.run(
        [ANALYZE, "verify", "--man=no", *map(str, installed_units)],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # an unknown or misspelt key is only a warning there


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_systemd_rates_the_sandbox_ok(unit: Path) -> None:
    """Exposure at most 2.0 of 10 (``systemd-analyze security``'s "OK" band)."""
    assert ANALYZE, "systemd-analyze is missing: apt-get install systemd"
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stdout.splitlines()[-1:]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_each_unit_notifies_restarts_and_runs_sandboxed_as_pnsq(unit: Path) -> None:
    keys = _keys(unit)
    assert keys["Service.Type"] == ["notify"]  # pnsq sends READY=1 (tests/test_sd_notify.py)
    assert keys["Service.Restart"] == ["on-failure"]
    assert keys["Service.LimitNOFILE"] == ["65536"]
    assert keys["Service.User"] == ["pnsq"]
    for key, value in SANDBOX.items():
        assert keys[f"Service.{key}"] == [value], key
    assert keys["Install.WantedBy"] == ["multi-user.target"]


def test_nsqd_writes_its_messages_to_its_state_directory() -> None:
    unit = SYSTEMD / "pnsq-nsqd.service"
    assert _keys(unit)["Service.StateDirectory"] == ["pnsq"]
    options = parse(_exec_start(unit), _config(_exec_start(unit)))
    assert options.data_path == "/var/lib/pnsq"  # the only path ProtectSystem=strict leaves


def _config(argv: list[str], shipped_in: Path = SYSTEMD) -> dict[str, object]:
    """The shipped config file that ``--config`` names, read as pnsq reads it."""
    path = config_of(argv)
    assert path is not None
    assert path == f"/etc/pnsq/{argv[0]}.toml"
    shipped = shipped_in / Path(path).name

    def unknown(message: str) -> None:
        raise AssertionError(message)

    spec: table.Spec = importlib.import_module(f"pnsq.cli.{argv[0]}").SPEC
    return table.load_config(str(shipped), spec, unknown)


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_pnsq_accepts_each_exec_start_with_its_config_file(unit: Path) -> None:
    argv = _exec_start(unit)
    parse(argv, _config(argv))


def test_a_misspelt_key_in_a_config_file_fails_this_check(tmp_path: Path) -> None:
    """pnsq only warns about an unknown key; here it fails, so a shipped file cannot drift."""
    (tmp_path / "admin.toml").write_text('lookupd_http_adresses = ["a:4161"]\n')
    with pytest.raises(AssertionError, match="lookupd_http_adresses"):
        _config(["admin", "--config=/etc/pnsq/admin.toml"], tmp_path)


def test_the_sysusers_file_creates_the_units_user(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    assert sysusers, "systemd-sysusers is missing: apt-get install systemd"
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSTEMD / "sysusers.d" / "pnsq.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    users = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc" / "passwd").open()}
    assert users["pnsq"][5] == "/var/lib/pnsq"
    assert users["pnsq"][6].strip().endswith("nologin")
