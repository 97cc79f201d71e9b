"""The admin reaching nodes over HTTPS: ``https://`` addresses and ``--http-client-tls-*``.

Each HTTPS node is a real in-process nsqd behind ``tls_proxy`` (an HTTPS front with a
certificate from a trustme CA made in the test), so what the admin reads and does over TLS is
checked in the nsqd itself. The CA is trusted only through ``--http-client-tls-root-ca-file``,
so a pass proves the flag is used; without it, or with the wrong CA, the node is shown as down
with the certificate error, and ``--http-client-tls-insecure-skip-verify`` gets through anyway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trustme

from pnsq.admin.server import AdminServer
from pnsq.nsqd.nsqd import NSQD


@pytest.fixture
async def nsqd(make_nsqd: Any, http: Any) -> NSQD:
    node: NSQD = await make_nsqd()
    for target in ("/topic/create?topic=secure", "/channel/create?topic=secure&channel=c"):
        assert (await http(node.http_address, "POST", target)).status == 200
    return node


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def pem(tmp_path: Path, name: str, blob: trustme.Blob) -> str:
    path = tmp_path / name
    blob.write_to_path(str(path))
    return str(path)


async def nodes_of(http: Any, admin: AdminServer) -> list[dict[str, Any]]:
    response = await http(admin.http_address, "GET", "/api/nodes")
    assert response.status == 200
    result: list[dict[str, Any]] = response.json()["nodes"]
    return result


async def test_an_https_node_is_read_and_acted_on_with_the_root_ca_file(
    make_admin: Any, tls_proxy: Any, nsqd: NSQD, ca: trustme.CA, http: Any, tmp_path: Path
) -> None:
    front = await tls_proxy(nsqd.http_address, ca)
    admin = await make_admin(
        nsqd_http_addresses=(f"https://{front}",),
        http_client_tls_root_ca_file=pem(tmp_path, "ca.pem", ca.cert_pem),
    )
    [node] = await nodes_of(http, admin)
    assert (node["node"], node["up"]) == (front, True), node
    topic = (await http(admin.http_address, "GET", "/api/topics/secure")).json()
    assert [c["channel_name"] for c in topic["channels"]] == ["c"]
    body = json.dumps({"action": "pause"}).encode()
    headers = [("Content-Type", "application/json")]
    response = await http(admin.http_address, "POST", "/api/topics/secure/c", body, headers)
    assert response.status == 200, response.body
    assert nsqd.topics["secure"].channels["c"].paused


async def test_an_untrusted_certificate_is_a_down_node_unless_told_to_skip_verify(
    make_admin: Any, tls_proxy: Any, nsqd: NSQD, ca: trustme.CA, http: Any, tmp_path: Path
) -> None:
    front = await tls_proxy(nsqd.http_address, ca)
    other_ca = pem(tmp_path, "other.pem", trustme.CA().cert_pem)
    for options in ({}, {"http_client_tls_root_ca_file": other_ca}):
        admin = await make_admin(nsqd_http_addresses=(f"https://{front}",), **options)
        [node] = await nodes_of(http, admin)
        assert node["up"] is False
        assert "CERTIFICATE_VERIFY_FAILED" in node["error"], node["error"]
    admin = await make_admin(
        nsqd_http_addresses=(f"https://{front}",), http_client_tls_insecure_skip_verify=True
    )
    [node] = await nodes_of(http, admin)
    assert node["up"] is True


async def test_a_node_that_requires_a_client_certificate(
    make_admin: Any, tls_proxy: Any, nsqd: NSQD, ca: trustme.CA, http: Any, tmp_path: Path
) -> None:
    clients = trustme.CA()
    front = await tls_proxy(nsqd.http_address, ca, client_ca=clients)
    root = pem(tmp_path, "ca.pem", ca.cert_pem)
    without = await make_admin(
        nsqd_http_addresses=(f"https://{front}",), http_client_tls_root_ca_file=root
    )
    [node] = await nodes_of(http, without)
    assert node["up"] is False
    mine = clients.issue_cert("pnsq-admin")
    admin = await make_admin(
        nsqd_http_addresses=(f"https://{front}",),
        http_client_tls_root_ca_file=root,
        http_client_tls_cert=pem(tmp_path, "cert.pem", mine.cert_chain_pems[0]),
        http_client_tls_key=pem(tmp_path, "key.pem", mine.private_key_pem),
    )
    [node] = await nodes_of(http, admin)
    assert node["up"] is True, node


async def test_an_https_lookupd_address(
    make_admin: Any,
    make_lookupd: Any,
    make_nsqd: Any,
    tls_proxy: Any,
    ca: trustme.CA,
    http: Any,
    tmp_path: Path,
) -> None:
    from lookup_helpers import knows, tcp, until

    lookupd = await make_lookupd()
    node = await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),))
    assert (await http(node.http_address, "POST", "/topic/create?topic=found")).status == 200
    await until(lambda: knows(lookupd, node))
    front = await tls_proxy(lookupd.http_address, ca)
    admin = await make_admin(
        lookupd_http_addresses=(f"https://{front}",),
        http_client_tls_root_ca_file=pem(tmp_path, "ca.pem", ca.cert_pem),
    )
    response = await http(admin.http_address, "GET", "/api/topics")
    assert response.json()["topics"] == ["found"], response.body
