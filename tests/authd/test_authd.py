"""``pnsq authd``: the secrets file, NSQ's auth HTTP protocol (GET and POST as nsqd sends them),
what nsqd sends it, and SIGHUP reloading a good file and refusing a bad one in a real process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from auth_helpers import authd_address, fake_auth_server, start_authd, write_secrets
from v2client import V2Client

from pnsq.authd.secrets import load_secrets
from pnsq.nsqd.nsqd import NSQD
from pnsq.wire.commands import encode_auth

MakeNSQD = Callable[..., Awaitable[NSQD]]
HTTPRequest = Callable[..., Awaitable[Any]]  # the root conftest's ``http`` fixture

GRANT = {
    "secret": "s 1&2",
    "identity": "alice",
    "identity_url": "https://example.com/alice",
    "ttl": 60,
    "authorizations": [{"topic": "^t$", "channels": [".*"], "permissions": ["publish"]}],
}
REPLY = {
    "ttl": 60,
    "identity": "alice",
    "identity_url": "https://example.com/alice",
    "authorizations": [{"topic": "^t$", "channels": [".*"], "permissions": ["publish"]}],
}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[secrets]]\nsecret = 'a'\nttl = 0\n", "'ttl' must be a whole number of seconds > 0"),
        ("[[secrets]]\nidentity = 'a'\n", "'secret' must be a non-empty string"),
        (
            "[[secrets]]\nsecret = 'a'\n[[secrets]]\nsecret = 'a'\n",
            "the same secret is given twice",
        ),
        ("[[secrets]]\nsecret = 'a'\nidentiy = 'x'\n", "unknown key 'identiy'"),
        (
            "[[secrets]]\nsecret = 'a'\nauthorizations = [{topic = '(', channels = []}]\n",
            "bad regular expression '('",
        ),
        (
            "[[secrets]]\nsecret = 'a'\nauthorizations = [{topic = 't', permissions = ['read']}]\n",
            "unknown permission 'read'",
        ),
        ("secrets = 'a'\n", "'secrets' must be an array of tables"),
        ("[[secrets]\n", "is not valid TOML"),
    ],
)
def test_a_bad_secrets_file_is_refused_with_its_reason(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(problem)):
        load_secrets(str(path))


async def test_get_and_post_answer_nsqs_auth_protocol(
    nursery: trio.Nursery, tmp_path: Path, http: HTTPRequest
) -> None:
    authd = await start_authd(nursery, write_secrets(tmp_path / "s.toml", [GRANT]))
    assert authd.http_address is not None
    address = authd.http_address
    ok = await http(address, "GET", "/auth?common_name=&remote_ip=1.2.3.4&secret=s+1%262&tls=false")
    assert (ok.status, ok.json()) == (200, REPLY)
    body = json.dumps({"secret": ["s 1&2"], "remote_ip": ["1.2.3.4"], "tls": ["true"]}).encode()
    posted = await http(address, "POST", "/auth", body, [("Content-Type", "application/json")])
    assert (posted.status, posted.json()) == (200, REPLY)
    refused = await http(address, "GET", "/auth?secret=nope&remote_ip=1.2.3.4&tls=false")
    assert (refused.status, refused.body) == (403, b"NOT_AUTHORIZED")
    assert (await http(address, "GET", "/ping")).body == b"OK"


@pytest.mark.parametrize("method", ["get", "post"])
async def test_nsqd_sends_the_query_as_nsq_does(
    make_nsqd: MakeNSQD, nursery: trio.Nursery, method: str
) -> None:
    requests: list[bytes] = []
    answer = json.dumps(REPLY).encode()
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
    server = await fake_auth_server(nursery, reply, requests)
    nsqd = await make_nsqd(
        http_address="",
        auth_http_addresses=(f"http://{server}/check",),
        auth_http_request_method=method,
    )
    assert nsqd.tcp_address is not None
    client = await V2Client.connect(nsqd.tcp_address)
    await client.send(encode_auth(b"s 1&2"))
    assert json.loads(await client.read_response())["identity"] == "alice"
    head, _, body = requests[0].partition(b"\r\n\r\n")
    line, *headers = head.decode().split("\r\n")
    assert "Accept: application/vnd.nsq; version=1.0" in headers
    if method == "get":
        query = "common_name=&remote_ip=127.0.0.1&secret=s+1%262&tls=false"
        assert line == f"GET /check?{query} HTTP/1.1"
    else:
        assert line == "POST /check HTTP/1.1"
        assert "Content-Type: application/json" in headers
        assert body == (
            b'{"common_name":[""],"remote_ip":["127.0.0.1"],'
            b'"secret":["s 1\\u00262"],"tls":["false"]}'
        )


async def test_nsqd_with_post_method_authenticates_against_authd(
    make_nsqd: MakeNSQD, nursery: trio.Nursery, tmp_path: Path
) -> None:
    authd = await start_authd(nursery, write_secrets(tmp_path / "s.toml", [GRANT]))
    nsqd = await make_nsqd(
        http_address="",
        auth_http_addresses=(authd_address(authd),),
        auth_http_request_method="post",
    )
    assert nsqd.tcp_address is not None
    client = await V2Client.connect(nsqd.tcp_address)
    await client.send(encode_auth(b"s 1&2"))
    assert json.loads(await client.read_response())["permission_count"] == 1
    await client.pub("t", b"hello")


# -- as a process -------------------------------------------------------------------------------


class AuthdProcess:
    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pnsq",
                "authd",
                "--http-address=127.0.0.1:0",
                f"--config={config}",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.address = self.wait_for(r"HTTP: listening on ([\d.]+:\d+)")[1]

    def wait_for(self, pattern: str) -> re.Match[str]:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"authd never logged {pattern!r}")

    def auth(self, secret: str) -> tuple[int, Any]:
        url = f"http://{self.address}/auth?remote_ip=127.0.0.1&tls=false&secret={secret}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=10)


@pytest.mark.timeout(40)
def test_sighup_reloads_a_good_file_and_keeps_the_old_table_for_a_bad_one(
    tmp_path: Path,
) -> None:
    config = write_secrets(tmp_path / "s.toml", [dict(GRANT, secret="old")])
    authd = AuthdProcess(config)
    try:
        assert authd.auth("old")[0] == 200
        write_secrets(config, [dict(GRANT, secret="new")])
        os.kill(authd.proc.pid, signal.SIGHUP)
        authd.wait_for(r"reloaded .*: 1 secrets")
        assert authd.auth("new") == (200, REPLY)
        assert authd.auth("old") == (403, b"NOT_AUTHORIZED")
        config.write_text("[[secrets]]\nsecret = 'x'\nttl = -1\n")
        os.kill(authd.proc.pid, signal.SIGHUP)
        authd.wait_for(r"reload refused, keeping 1 secrets: .*'ttl' must be")
        assert authd.auth("new")[0] == 200
    finally:
        assert authd.stop() == 0


def test_a_bad_file_at_start_exits_1_saying_why(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text("[[secrets]]\nsecret = 'x'\npermissions = []\n")
    done = subprocess.run(
        [sys.executable, "-m", "pnsq", "authd", "--http-address=127.0.0.1:0", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 1
    assert "unknown key 'permissions'" in done.stderr
