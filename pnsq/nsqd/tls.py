"""nsqd's TLS: the server context built from the --tls-* options, and what /stats says of it.

One ``ssl.SSLContext`` serves both the TCP upgrade (IDENTIFY ``tls_v1``) and the HTTPS
listener, as NSQ's single ``tls.Config`` does. Client certificates follow
--tls-client-auth-policy: none asked for by default, ``require`` and ``require-verify`` both
demand one. Go's ``require`` accepts any certificate unverified; Python's ssl module cannot
accept a certificate it has not verified, so pnsq checks it against --tls-root-ca-file (or the
system's CAs) under both policies. --tls-min-version sets the floor; OpenSSL's own policy may
refuse TLS 1.0/1.1 anyway (Debian's does), which pnsq leaves in place. /stats names versions and cipher suites as NSQ prints them
(``TLS1.3``, ``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256``): OpenSSL's names are mapped to those.
"""

from __future__ import annotations

import ssl
from typing import Any, Protocol

__all__ = ["HANDSHAKE_TIMEOUT", "build_context", "describe", "required", "server_context"]

HANDSHAKE_TIMEOUT = 5.0  # NSQ's deadline for the TCP upgrade's handshake

_VERSIONS = {
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
}
_VERSION_NAMES = {"TLSv1": "TLS1.0", "TLSv1.1": "TLS1.1", "TLSv1.2": "TLS1.2", "TLSv1.3": "TLS1.3"}
# OpenSSL's names of the TLS 1.2 suites Go offers, as Go (IANA) names them. TLS 1.3 suites
# already have their IANA names in OpenSSL.
_CIPHER_NAMES = {
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES256-SHA": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "ECDHE-ECDSA-AES128-SHA": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-ECDSA-AES256-SHA": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "ECDHE-RSA-AES128-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-ECDSA-AES128-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "AES128-SHA": "TLS_RSA_WITH_AES_128_CBC_SHA",
    "AES256-SHA": "TLS_RSA_WITH_AES_256_CBC_SHA",
    "AES128-SHA256": "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "DES-CBC3-SHA": "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "ECDHE-RSA-DES-CBC3-SHA": "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
}


def build_context(
    cert: str,
    key: str,
    *,
    root_ca_file: str = "",
    client_auth_policy: str = "",
    min_version: str = "tls1.0",
) -> ssl.SSLContext | None:
    """The server context, or None without a certificate; ValueError when it cannot be built."""
    if not cert and not key:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        for path in filter(None, (cert, key, root_ca_file)):
            with open(path, "rb"):  # ssl's own errors do not name the file
                pass
        if min_version in _VERSIONS:  # below TLS 1.2: OpenSSL's own floor stands
            context.minimum_version = _VERSIONS[min_version]
        context.load_cert_chain(cert, key)
        if client_auth_policy:
            context.verify_mode = ssl.CERT_REQUIRED
            if root_ca_file:
                context.load_verify_locations(root_ca_file)
            else:
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        elif root_ca_file:
            context.load_verify_locations(root_ca_file)  # NSQ fails on an unreadable one too
    except OSError as err:  # ssl.SSLError too
        if err.filename:  # Go's wording: "open <path>: no such file or directory"
            reason = f"open {err.filename}: {(err.strerror or '').lower()}"
        else:
            reason = str(err)
        raise ValueError(f"failed to build TLS config - {reason}") from None
    return context


class TLSOptions(Protocol):
    """The --tls-* options (``Options``; options.py imports this module, not the reverse)."""

    @property
    def tls_cert(self) -> str: ...
    @property
    def tls_key(self) -> str: ...
    @property
    def tls_root_ca_file(self) -> str: ...
    @property
    def tls_client_auth_policy(self) -> str: ...
    @property
    def tls_min_version(self) -> str: ...
    @property
    def tls_required(self) -> str: ...


def server_context(options: TLSOptions) -> ssl.SSLContext | None:
    return build_context(
        options.tls_cert,
        options.tls_key,
        root_ca_file=options.tls_root_ca_file,
        client_auth_policy=options.tls_client_auth_policy,
        min_version=options.tls_min_version,
    )


def required(options: TLSOptions) -> str:
    """--tls-required in effect: a client auth policy implies ``true``, as in NSQ."""
    if options.tls_client_auth_policy and options.tls_required == "false":
        return "true"
    return options.tls_required


def describe(ssl_object: Any) -> dict[str, Any]:
    """The /stats fields of one TLS connection (``ssl.SSLObject``), named as NSQ names them."""
    version = ssl_object.version() or ""
    cipher = ssl_object.cipher()
    name = cipher[0] if cipher else ""
    protocol = ssl_object.selected_alpn_protocol() or ""
    return {
        "tls": True,
        "tls_cipher_suite": _CIPHER_NAMES.get(name, name),
        "tls_version": _VERSION_NAMES.get(version, version),
        "tls_negotiated_protocol": protocol,
        "tls_negotiated_protocol_is_mutual": True,
    }


def common_name(ssl_object: Any) -> str:
    """The client certificate's subject CN ("" without one): what NSQ sends the auth server."""
    cert = ssl_object.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""
