"""go-nsq's option names on the tools' --consumer-opt / --producer-opt, and the shared flags."""

from __future__ import annotations

import io
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from pnsq.tools.client_setup import (
    connection_config,
    consumer_arguments,
    parse_go_nsq_options,
)
from pnsq.tools.status import Rate, StatusLine


def test_go_nsq_names_map_onto_the_consumer_and_its_connection() -> None:
    kwargs, settings = parse_go_nsq_options(
        [
            "max_attempts,10",  # go-nsq's own spelling
            "max_requeue_delay=2m",  # key=value works too
            "heartbeat_interval,5s",
            "dial_timeout,250ms",
            "user_agent,mine/1.0",
            "auth_secret,s3cret",
            "read_timeout,30s",  # accepted, as NSQ scripts pass it
        ]
    )
    assert kwargs == {"max_attempts": 10, "max_requeue_delay": 120.0}
    assert settings == {
        "heartbeat_interval": 5.0,
        "connect_timeout": 0.25,
        "user_agent": "mine/1.0",
        "auth_secret": b"s3cret",
    }
    config = connection_config("tail", settings)
    assert (config.heartbeat_interval, config.user_agent) == (5.0, "mine/1.0")
    assert connection_config("tail", {}).user_agent.startswith("pnsq_tail/")


def test_go_nsq_tls_and_compression_settings_configure_the_connection(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("client.test")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    _, settings = parse_go_nsq_options(
        [
            "tls_v1,true",
            f"tls_root_ca_file,{tmp_path / 'ca.pem'}",
            f"tls_cert,{tmp_path / 'cert.pem'}",
            f"tls_key,{tmp_path / 'key.pem'}",
            "deflate,true",
            "deflate_level,3",
        ]
    )
    config = connection_config("tail", settings)
    assert isinstance(config.tls, ssl.SSLContext)
    assert config.tls.verify_mode is ssl.CERT_REQUIRED
    assert config.tls.get_ca_certs()[0]["subject"]  # the CA file, not the system's
    assert (config.deflate, config.deflate_level) == (True, 3)
    identify = config.identify()
    assert (identify["tls_v1"], identify["deflate"], identify["deflate_level"]) == (True, True, 3)

    _, settings = parse_go_nsq_options(["tls_v1", "tls_insecure_skip_verify,true", "snappy"])
    config = connection_config("tail", settings)
    assert isinstance(config.tls, ssl.SSLContext)
    assert config.tls.verify_mode is ssl.CERT_NONE
    assert config.identify()["snappy"] is True
    with pytest.raises(ValueError, match="snappy and deflate cannot be used together"):
        connection_config("tail", parse_go_nsq_options(["snappy", "deflate"])[1])
    with pytest.raises(ValueError, match="tls_root_ca_file"):
        parse_go_nsq_options(["tls_v1", f"tls_root_ca_file,{tmp_path / 'missing.pem'}"])
    with pytest.raises(ValueError, match="go together"):
        parse_go_nsq_options(["tls_v1", f"tls_cert,{tmp_path / 'cert.pem'}"])


@pytest.mark.parametrize(
    ("options", "consumer", "error"),
    [
        (["max_attempts,ten"], True, "go-nsq option max_attempts: expected an integer"),
        (["heartbeat_interval,5"], True, "missing unit in duration"),
        (["no_such_thing,1"], True, "unknown go-nsq option 'no_such_thing'"),
        (["local_addr,1.2.3.4"], True, "not supported by pnsq's client yet"),
        (["max_in_flight,5"], False, "for consumers, not producers"),
    ],
)
def test_bad_go_nsq_options_are_refused_with_the_reason(
    options: list[str], consumer: bool, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        parse_go_nsq_options(options, consumer=consumer)


@dataclass(frozen=True)
class _Flags:
    nsqd_tcp_addresses: tuple[str, ...] = ()
    lookupd_http_addresses: tuple[str, ...] = ()
    max_in_flight: int = 5
    consumer_opts: tuple[str, ...] = ()


def test_consumer_arguments_need_one_kind_of_address() -> None:
    with pytest.raises(ValueError, match="required"):
        consumer_arguments("tail", _Flags())
    with pytest.raises(ValueError, match="not both"):
        consumer_arguments("tail", _Flags(("a:1",), ("b:2",)))
    # an explicit go-nsq setting wins over the flag, as in NSQ's tools
    kwargs = consumer_arguments("tail", _Flags(("a:1",), consumer_opts=("max_in_flight,7",)))
    assert kwargs["max_in_flight"] == 7
    assert kwargs["nsqd_tcp_addresses"] == ["a:1"]
    assert "max_attempts" not in kwargs  # the consumer's own default (go-nsq's 5)


def test_a_relay_never_gives_up_unless_told_to() -> None:
    assert consumer_arguments("x", _Flags(("a:1",)), relay=True)["max_attempts"] == 0
    told = _Flags(("a:1",), consumer_opts=("max_attempts,9",))
    assert consumer_arguments("x", told, relay=True)["max_attempts"] == 9


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        (_Terminal(), "\r1 msgs 1/s\r3 msgs 2/s\n"),  # one line rewritten, ended at the end
        (io.StringIO(), "1 msgs 1/s\n3 msgs 2/s\n"),  # a log keeps every line
    ],
)
def test_status_line_rewrites_one_line_on_a_terminal_and_appends_in_a_log(
    out: io.StringIO, expected: str
) -> None:
    now = [0.0]
    rate = Rate(clock=lambda: now[0])
    count = [0]
    line = StatusLine(
        lambda _: f"{count[0]} msgs {rate.update(count[0]):.0f}/s", out=out, clock=lambda: now[0]
    )
    now[0], count[0] = 1.0, 1
    line.print()
    now[0], count[0] = 2.0, 3
    line.final()
    assert out.getvalue() == expected
