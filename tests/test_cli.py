"""``pnsq nsqd``: NSQ's flags, defaults, config file and errors, plus the helpers behind them.

The daemon is replaced by a recorder (``sys.modules["pnsq.nsqd.daemon"]``), so each test sees
exactly the ``Options`` the command would start nsqd with. Expected values are written out from
NSQ's documentation (reference §4) and Go's ``time`` package, not derived from pnsq's own tables.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import logging
import re
import socket
import subprocess
import sys
import types
import zlib
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from pnsq import cli
from pnsq._internal import netaddr
from pnsq._internal.duration import (
    format_duration,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
)
from pnsq._internal.logging import setup_logging
from pnsq._internal.netaddr import default_broadcast_address, split_host_port
from pnsq.cli import table
from pnsq.nsqd import options as nsqd_options
from pnsq.nsqd.options import Options

BROADCAST = "192.0.2.77"


class Recorder:
    def __init__(self) -> None:
        self.options: list[Options] = []
        self.logging: list[tuple[str, str]] = []

    @property
    def only(self) -> Options:
        assert len(self.options) == 1, self.options
        return self.options[0]


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    fake = types.ModuleType("pnsq.nsqd.daemon")
    fake.run = recorder.options.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pnsq.nsqd.daemon", fake)
    monkeypatch.setattr(
        table, "setup_logging", lambda lvl, pfx, **_: recorder.logging.append((lvl, pfx))
    )
    monkeypatch.setattr(nsqd_options, "default_broadcast_address", lambda: BROADCAST)
    return recorder


def nsqd(*args: str) -> Result:
    return CliRunner().invoke(cli.main, ["nsqd", *args])


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "nsqd.toml"
    path.write_text(text)
    return str(path)


# -- defaults --------------------------------------------------------------------------------------

NSQ_DEFAULTS = {
    "log_level": "info",
    "log_prefix": "[nsqd] ",
    "tcp_address": "0.0.0.0:4150",
    "http_address": "0.0.0.0:4151",
    "https_address": "0.0.0.0:4152",
    "broadcast_tcp_port": 0,
    "broadcast_http_port": 0,
    "nsqlookupd_tcp_addresses": (),
    "auth_http_addresses": (),
    "auth_http_request_method": "get",
    "http_client_connect_timeout": 2.0,
    "http_client_request_timeout": 5.0,
    "topology_region": "",
    "topology_zone": "",
    "enable_experiment": (),
    "data_path": "",
    "mem_queue_size": 10000,
    "max_bytes_per_file": 104857600,
    "sync_every": 2500,
    "sync_timeout": 2.0,
    "queue_scan_worker_pool_max": 4,
    "queue_scan_selection_count": 20,
    "msg_timeout": 60.0,
    "max_msg_timeout": 900.0,
    "max_msg_size": 1048576,
    "max_body_size": 5242880,
    "max_req_timeout": 3600.0,
    "max_heartbeat_interval": 60.0,
    "max_rdy_count": 2500,
    "max_output_buffer_size": 65536,
    "max_output_buffer_timeout": 30.0,
    "min_output_buffer_timeout": 0.025,
    "output_buffer_timeout": 0.25,
    "max_channel_consumers": 0,
    "statsd_address": "",
    "statsd_interval": 60.0,
    "statsd_mem_stats": True,
    "statsd_prefix": "nsq.%s",
    "statsd_udp_packet_size": 508,
    "statsd_exclude_ephemeral": False,
    "e2e_processing_latency_percentiles": (),
    "e2e_processing_latency_window_time": 600.0,
    "tls_cert": "",
    "tls_key": "",
    "tls_client_auth_policy": "",
    "tls_root_ca_file": "",
    "tls_required": "false",
    "tls_min_version": "tls1.0",
    "deflate": True,
    "max_deflate_level": 6,
    "snappy": True,
}


def test_no_flags_starts_nsqd_with_nsqs_defaults(rec: Recorder) -> None:
    result = nsqd()
    assert result.exit_code == 0, result.output
    options = rec.only
    for name, expected in NSQ_DEFAULTS.items():
        assert getattr(options, name) == expected, name
    hostname_hash = zlib.crc32(hashlib.md5(socket.gethostname().encode()).digest()) % 1024
    assert options.node_id == hostname_hash
    assert options.broadcast_address == BROADCAST
    assert rec.logging == [("info", "[nsqd] ")]


def test_explicit_broadcast_address_is_kept(rec: Recorder) -> None:
    assert nsqd("--broadcast-address=nsqd-0.nsqd").exit_code == 0
    assert rec.only.broadcast_address == "nsqd-0.nsqd"


# -- flags ------------------------------------------------------------------------------------------


def test_flags_of_every_kind_are_converted(rec: Recorder) -> None:
    result = nsqd(
        "--node-id=7",
        "--tcp-address=127.0.0.1:5150",
        "--http-address=",
        "--msg-timeout=1m30s",
        "--min-output-buffer-timeout=10ms",
        "--mem-queue-size=0",
        "--broadcast-tcp-port=14150",
        "--log-level=WARN",
        "--log-prefix=[x] ",
        "--auth-http-request-method=POST",
        "--tls-min-version=tls1.2",
        "--max-deflate-level=9",
        "--enable-experiment=topology-aware-consumption",
    )
    assert result.exit_code == 0, result.output
    options = rec.only
    assert options.node_id == 7
    assert options.tcp_address == "127.0.0.1:5150"
    assert options.http_address == ""
    assert options.msg_timeout == 90.0
    assert options.min_output_buffer_timeout == pytest.approx(0.01)
    assert options.mem_queue_size == 0
    assert options.broadcast_tcp_port == 14150
    assert options.log_level == "warn"
    assert rec.logging == [("warn", "[x] ")]
    assert options.auth_http_request_method == "post"
    assert options.tls_min_version == "tls1.2"
    assert options.max_deflate_level == 9
    assert options.enable_experiment == ("topology-aware-consumption",)


def test_repeatable_flags_keep_every_value_in_order(rec: Recorder) -> None:
    result = nsqd(
        "--lookupd-tcp-address=10.0.0.1:4160",
        "--lookupd-tcp-address",
        "10.0.0.2:4160",
        "--auth-http-address=auth:4181",
        "--auth-http-address=https://auth.example/auth",
        "--e2e-processing-latency-percentile=1.0,0.99",
        "--e2e-processing-latency-percentile=0.5",
    )
    assert result.exit_code == 0, result.output
    options = rec.only
    assert options.nsqlookupd_tcp_addresses == ("10.0.0.1:4160", "10.0.0.2:4160")
    assert options.auth_http_addresses == ("auth:4181", "https://auth.example/auth")
    assert options.e2e_processing_latency_percentiles == (1.0, 0.99, 0.5)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--deflate=false", "--snappy=0"], (False, False, True)),
        (["--deflate=F", "--statsd-mem-stats=FALSE"], (False, True, False)),
        (["--deflate", "--snappy=t", "--statsd-mem-stats=True"], (True, True, True)),
    ],
)
def test_bool_flags_take_gos_spellings(
    rec: Recorder, args: list[str], expected: tuple[bool, bool, bool]
) -> None:
    assert nsqd(*args).exit_code == 0
    assert (rec.only.deflate, rec.only.snappy, rec.only.statsd_mem_stats) == expected


def test_single_dash_go_style_flags_work(rec: Recorder) -> None:
    result = nsqd("-tcp-address=127.0.0.1:4150", "-lookupd-tcp-address", "lk:4160", "-snappy=false")
    assert result.exit_code == 0, result.output
    assert rec.only.tcp_address == "127.0.0.1:4150"
    assert rec.only.nsqlookupd_tcp_addresses == ("lk:4160",)
    assert rec.only.snappy is False


def test_deprecated_flags_are_accepted_and_do_nothing(rec: Recorder) -> None:
    result = nsqd("--verbose", "--worker-id=true")
    assert result.exit_code == 0, result.output
    assert "--verbose" in result.stderr
    assert "--worker-id" in result.stderr
    assert rec.only.log_level == "info"


# -- config file -------------------------------------------------------------------------------------

CONFIG = """
id = 99
log_level = "debug"
tcp_address = "127.0.0.1:6150"
nsqlookupd_tcp_addresses = ["10.0.0.1:4160", "10.0.0.2:4160"]
mem_queue_size = 500
msg_timeout = "30s"
max_req_timeout = "2h"
deflate = false
tls_required = false
e2e_processing_latency_percentiles = [0.99, 1, "0.5"]
statsd_prefix = "pnsq.%s"
broadcast_address = "nsqd.internal"
"""


def test_config_file_keys_apply(rec: Recorder, tmp_path: Path) -> None:
    result = nsqd("--config", write_config(tmp_path, CONFIG))
    assert result.exit_code == 0, result.output
    options = rec.only
    assert options.node_id == 99
    assert options.log_level == "debug"
    assert options.tcp_address == "127.0.0.1:6150"
    assert options.nsqlookupd_tcp_addresses == ("10.0.0.1:4160", "10.0.0.2:4160")
    assert options.mem_queue_size == 500
    assert options.msg_timeout == 30.0
    assert options.max_req_timeout == 7200.0
    assert options.deflate is False
    assert options.tls_required == "false"
    assert options.e2e_processing_latency_percentiles == (0.99, 1.0, 0.5)
    assert options.statsd_prefix == "pnsq.%s"
    assert options.broadcast_address == "nsqd.internal"
    assert options.http_address == "0.0.0.0:4151"  # absent from the file: default


def test_explicit_flag_beats_config_file(rec: Recorder, tmp_path: Path) -> None:
    result = nsqd(
        "--node-id=3",
        "--msg-timeout=5s",
        "--deflate=true",
        "--lookupd-tcp-address=flag:4160",
        f"--config={write_config(tmp_path, CONFIG)}",
    )
    assert result.exit_code == 0, result.output
    options = rec.only
    assert options.node_id == 3
    assert options.msg_timeout == 5.0
    assert options.deflate is True
    assert options.nsqlookupd_tcp_addresses == ("flag:4160",)
    assert options.mem_queue_size == 500  # not given as a flag: the file's value


def test_unknown_config_key_warns_and_starts(rec: Recorder, tmp_path: Path) -> None:
    path = write_config(tmp_path, 'mem_queue_size = 5\nmem-queue-size = 7\nfrobnicate = "yes"\n')
    result = nsqd("--config", path)
    assert result.exit_code == 0, result.output
    assert "'frobnicate'" in result.stderr
    assert "'mem-queue-size'" in result.stderr
    assert rec.only.mem_queue_size == 5


def test_config_durations_must_be_strings(rec: Recorder, tmp_path: Path) -> None:
    result = nsqd("--config", write_config(tmp_path, "msg_timeout = 60000\n"))
    assert result.exit_code == 1
    assert "'msg_timeout'" in result.stderr
    assert 'durations must be strings such as "60s"' in result.stderr
    assert rec.options == []


def test_config_tls_required_accepts_tcp_https_spelling(rec: Recorder, tmp_path: Path) -> None:
    result = nsqd("--config", write_config(tmp_path, 'tls_required = "tcp-https"\n'))
    # Recognised as NSQ's value, then refused: no certificate to require TLS with.
    assert result.exit_code == 1
    assert "without TLS key and cert" in result.stderr


def test_broken_config_file_is_a_clear_error(rec: Recorder, tmp_path: Path) -> None:
    result = nsqd("--config", write_config(tmp_path, "mem_queue_size = = 3\n"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: failed to load config file ")
    missing = nsqd("--config", str(tmp_path / "absent.toml"))
    assert missing.exit_code == 1
    assert "absent.toml" in missing.stderr


# -- invalid input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node-id=1024"], "Error: --node-id must be [0,1024)"),
        (["--node-id=-1"], "Error: --node-id must be [0,1024)"),
        (
            ["--msg-timeout=abc"],
            'Error: invalid value for --msg-timeout: time: invalid duration "abc"',
        ),
        (["--msg-timeout=60"], 'time: missing unit in duration "60"'),
        (["--sync-timeout=1d"], 'time: unknown unit "d" in duration "1d"'),
        (["--mem-queue-size=lots"], "invalid value for --mem-queue-size: expected an integer"),
        (["--log-level=loud"], "invalid log level 'loud' (debug, info, warn, error, fatal)"),
        (["--deflate=maybe"], "invalid value for --deflate: expected true or false"),
        (["--max-deflate-level=10"], "Error: --max-deflate-level must be [1,9]"),
        (
            ["--e2e-processing-latency-percentile=0.5,1.5"],
            "invalid E2E processing latency percentile",
        ),
        (["--broadcast-http-port=70000"], "must be a port in [0,65535]"),
        (["--enable-experiment=warp-drive"], "invalid value for --enable-experiment"),
        (
            ["--tls-cert=/nonexistent/c.pem", "--tls-key=k.pem"],
            "Error: failed to build TLS config - open /nonexistent/c.pem: no such file or directory",
        ),
        (["--tls-required"], "cannot require TLS client connections without TLS key and cert"),
        (["--no-such-flag"], "No such option"),
        (["--msg-timeout"], "requires an argument"),
    ],
)
def test_invalid_input_exits_1_with_one_line(rec: Recorder, args: list[str], message: str) -> None:
    result = nsqd(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert rec.options == []


def test_invalid_config_node_id_names_the_key(rec: Recorder, tmp_path: Path) -> None:
    result = nsqd("--config", write_config(tmp_path, "id = 1024\n"))
    assert result.exit_code == 1
    assert "--node-id must be [0,1024)" in result.stderr


# -- version and help ---------------------------------------------------------------------------------


def test_version_prints_nsq_version_and_does_not_start(rec: Recorder) -> None:
    result = nsqd("--version")
    assert result.exit_code == 0
    assert result.stdout == "nsqd v1.3.0 (pnsq)\n"
    assert rec.options == []


def test_python_dash_m_pnsq_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pnsq", "nsqd", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "nsqd v1.3.0 (pnsq)\n"


# Every flag of reference §4 (NSQ 1.3), written out independently of nsqd_options.FLAGS.
NSQ_FLAGS = re.findall(
    r"\S+",
    """
config version log-level log-prefix verbose worker-id node-id tcp-address http-address
https-address broadcast-address broadcast-tcp-port broadcast-http-port lookupd-tcp-address
auth-http-address auth-http-request-method http-client-connect-timeout
http-client-request-timeout topology-region topology-zone enable-experiment data-path
mem-queue-size max-bytes-per-file sync-every sync-timeout queue-scan-worker-pool-max
queue-scan-selection-count msg-timeout max-msg-timeout max-msg-size max-body-size
max-req-timeout max-heartbeat-interval max-rdy-count max-output-buffer-size
max-output-buffer-timeout min-output-buffer-timeout output-buffer-timeout
max-channel-consumers statsd-address statsd-interval statsd-mem-stats statsd-prefix
statsd-udp-packet-size statsd-exclude-ephemeral e2e-processing-latency-percentile
e2e-processing-latency-window-time tls-cert tls-key tls-client-auth-policy tls-root-ca-file
tls-required tls-min-version deflate max-deflate-level snappy
""",
)


def test_help_lists_every_nsq_flag_with_its_default(rec: Recorder) -> None:
    result = nsqd("--help")
    assert result.exit_code == 0
    listed = set(re.findall(r"^\s+(?:-h, )?--([a-z0-9-]+)", result.stdout, re.MULTILINE))
    assert set(NSQ_FLAGS) <= listed, set(NSQ_FLAGS) - listed
    flat = " ".join(result.stdout.split())
    for shown in ("[default: 1m0s]", "[default: 250ms]", "[default: 0.0.0.0:4150]"):
        assert shown in flat
    assert "127.0.0.1" in flat  # the documented broadcast-address fallback
    assert rec.options == []


# -- Go durations ---------------------------------------------------------------------------------------

NS, US, MS, S = 1, 1_000, 1_000_000, 1_000_000_000
MIN, H = 60 * S, 3600 * S


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0s", 0),
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.0s", 1 * S),
        ("1.00s", 1 * S),
        ("1.004s", 1 * S + 4 * MS),
        ("100.00100s", 100 * S + 1 * MS),
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12\u00b5s", 12 * US),
        ("12\u03bcs", 12 * US),
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * MIN),
        ("16h", 16 * H),
        ("3h30m", 3 * H + 30 * MIN),
        ("1h15m30.5s", H + 15 * MIN + 30 * S + 500 * MS),
        ("10.5s4m", 4 * MIN + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * MIN + 3 * S + 400 * MS)),
        ("1h2m3s4ms5us6ns", H + 2 * MIN + 3 * S + 4 * MS + 5 * US + 6 * NS),
        ("39h9m14.425s", 39 * H + 9 * MIN + 14 * S + 425 * MS),
        ("52763797000ns", 52763797000 * NS),
        ("0.3333333333333333333h", 20 * MIN),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("9223372036854775.807us", (1 << 63) - 1),
        ("9223372036s854ms775us807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("-9223372036854775.808us", -(1 << 63)),
        ("0.100000000000000000000h", 6 * MIN),
        ("0.830103483285477580700h", 49 * MIN + 48 * S + 372539827 * NS),
    ],
)
def test_parse_duration_matches_go(text: str, nanoseconds: int) -> None:
    assert parse_duration_ns(text) == nanoseconds
    assert parse_duration(text) == nanoseconds / 1e9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("abc", 'time: invalid duration "abc"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1 s", 'time: unknown unit " s" in duration "1 s"'),
        ("1\u00b5", 'time: unknown unit "\\xc2\\xb5" in duration "1\\xc2\\xb5"'),
        ('5"s', 'time: unknown unit "\\"s" in duration "5\\"s"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
    ],
)
def test_parse_duration_errors_match_go(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1 * NS, "1ns"),
        (1100 * NS, "1.1\u00b5s"),
        (2200 * US, "2.2ms"),
        (3300 * MS, "3.3s"),
        (4 * MIN + 5 * S, "4m5s"),
        (4 * MIN + 5001 * MS, "4m5.001s"),
        (5 * H + 6 * MIN + 7001 * MS, "5h6m7.001s"),
        (8 * MIN + 1 * NS, "8m0.000000001s"),
        ((1 << 63) - 1, "2562047h47m16.854775807s"),
        (-(1 << 63), "-2562047h47m16.854775808s"),
        (-1500 * MS, "-1.5s"),
    ],
)
def test_format_duration_ns_matches_go(nanoseconds: int, text: str) -> None:
    assert format_duration_ns(nanoseconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (60.0, "1m0s"),
        (0.25, "250ms"),
        (0.025, "25ms"),
        (0.1, "100ms"),
        (2.0, "2s"),
        (3600.0, "1h0m0s"),
        (900.0, "15m0s"),
        (4530.5, "1h15m30.5s"),
    ],
)
def test_format_duration_seconds(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_formatted_durations_parse_back_exactly(nanoseconds: int) -> None:
    assert parse_duration_ns(format_duration_ns(nanoseconds)) == nanoseconds


# -- addresses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:4150", ("127.0.0.1", 4150)),
        ("0.0.0.0:4151", ("0.0.0.0", 4151)),
        (":4150", ("", 4150)),
        ("[::1]:4150", ("::1", 4150)),
        ("[::]:0", ("::", 0)),
        ("nsqd.example:65535", ("nsqd.example", 65535)),
    ],
)
def test_split_host_port(addr: str, expected: tuple[str, int]) -> None:
    assert split_host_port(addr) == expected


@pytest.mark.parametrize(
    ("addr", "why"),
    [
        ("localhost", "missing port"),
        ("", "missing port"),
        ("::1:4150", "too many colons"),
        ("[::1]", "missing port"),
        ("[::1:4150", "missing ']'"),
        ("host:http", "invalid port"),
        ("host:65536", "invalid port"),
        ("host:-1", "invalid port"),
        ("host:", "invalid port"),
    ],
)
def test_split_host_port_rejects(addr: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        split_host_port(addr)


def fake_resolution(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    def getaddrinfo(host: str, port: object, **_kw: object) -> list[tuple[object, ...]]:
        if not addresses:
            raise socket.gaierror("no such host")
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, 0))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_broadcast_default_is_the_hostnames_address(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolution(monkeypatch, "fe80::1", "127.0.1.1", "10.1.2.3")
    monkeypatch.setattr(netaddr, "_route_source_address", lambda: "172.16.0.9")
    assert default_broadcast_address() == "10.1.2.3"


def test_broadcast_default_skips_loopback_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolution(monkeypatch, "127.0.1.1", "::1")
    monkeypatch.setattr(netaddr, "_route_source_address", lambda: "172.16.0.9")
    assert default_broadcast_address() == "172.16.0.9"


def test_broadcast_default_falls_back_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolution(monkeypatch)
    monkeypatch.setattr(netaddr, "_route_source_address", lambda: None)
    assert default_broadcast_address() == "127.0.0.1"


def test_broadcast_default_on_this_machine_is_an_ip_address() -> None:
    ipaddress.ip_address(default_broadcast_address())


# -- logging -----------------------------------------------------------------------------------------


@pytest.fixture
def restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_log_lines_look_like_nsqs() -> None:
    stream = io.StringIO()
    setup_logging("INFO", "[nsqd] ", stream=stream)
    log = logging.getLogger("pnsq.test")
    log.debug("hidden")
    log.info("TCP: listening on %s", "127.0.0.1:4150")
    log.warning("careful")
    log.critical("boom")
    lines = stream.getvalue().splitlines()
    stamp = r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{6}"
    assert re.fullmatch(rf"\[nsqd\] {stamp} INFO: TCP: listening on 127\.0\.0\.1:4150", lines[0])
    assert re.fullmatch(rf"\[nsqd\] {stamp} WARNING: careful", lines[1])
    assert re.fullmatch(rf"\[nsqd\] {stamp} FATAL: boom", lines[2])
    assert len(lines) == 3


@pytest.mark.usefixtures("restore_root_logger")
def test_setup_logging_again_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("info", "[a] ", stream=first)
    setup_logging("debug", "[b] ", stream=second)
    logging.getLogger("pnsq.test").debug("once")
    assert first.getvalue() == ""
    assert second.getvalue().startswith("[b] ")
    with pytest.raises(ValueError, match="invalid log level"):
        setup_logging("verbose", "")


def test_drain_flags_are_parsed_and_checked(rec: Recorder) -> None:
    result = nsqd("--sigterm-mode=drain", "--drain-timeout=1m30s")
    assert result.exit_code == 0, result.output
    assert (rec.only.sigterm_mode, rec.only.drain_timeout) == ("drain", 90.0)
    bad = nsqd("--sigterm-mode=later")
    assert bad.exit_code != 0
    assert "later" in bad.output


def test_metrics_per_client_is_off_by_default_a_bare_flag_and_a_config_key(
    rec: Recorder, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "metrics_per_client = true\n")
    for args in (
        (),
        ("--metrics-per-client",),
        ("--metrics-per-client=false",),
        ("--config", config),
    ):
        assert nsqd(*args).exit_code == 0
    assert [options.metrics_per_client for options in rec.options] == [False, True, False, True]


def test_tls_cert_and_key_start_nsqd(rec: Recorder, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    result = nsqd(f"--tls-cert={cert_path}", f"--tls-key={key_path}", "--tls-required=tcp-https")
    assert result.exit_code == 0, result.stderr
    assert rec.only.tls_cert == str(cert_path)
    assert rec.only.tls_required == "tcp-https"
