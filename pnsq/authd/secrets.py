"""The secrets file of ``pnsq authd``: who may do what, read from TOML and checked whole.

    [[secrets]]
    secret = "s3cret"                  # what the client sends in AUTH
    identity = "orders-service"        # shown in nsqd's /stats and the AUTH reply
    identity_url = "https://wiki/orders"
    ttl = 3600                         # seconds until nsqd asks again
    authorizations = [
      { topic = "^orders$", channels = [".*"], permissions = ["subscribe", "publish"] },
    ]

Every mistake (a bad regex, an unknown permission or key, a duplicate secret, ttl <= 0) is a
``ValueError`` naming the entry, so a reload can refuse a bad file and keep the table it has:
nsqd would otherwise fail every AUTH against a reply it cannot use. Regexes are checked here
with Python's ``re``; nsqd (NSQ's or pnsq's) compiles them again and matches them unanchored.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

PERMISSIONS = frozenset({"subscribe", "publish"})
DEFAULT_TTL = 3600
_SECRET_KEYS = frozenset({"secret", "identity", "identity_url", "ttl", "authorizations"})
_AUTHORIZATION_KEYS = frozenset({"topic", "channels", "permissions"})


@dataclass(frozen=True)
class Grant:
    """One secret's answer, ready to send: NSQ's auth reply as a JSON-able dict."""

    reply: dict[str, Any]

    @property
    def identity(self) -> str:
        return str(self.reply["identity"])


def load_secrets(path: str) -> dict[str, Grant]:
    """The secrets of the TOML file at ``path``; ValueError saying what is wrong."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from None
    return parse_secrets(data, path)


def parse_secrets(data: dict[str, Any], where: str = "config") -> dict[str, Grant]:
    unknown = set(data) - {"secrets"}
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r} (expected [[secrets]])")
    entries = data.get("secrets", [])
    if not isinstance(entries, list):
        raise ValueError(f"{where}: 'secrets' must be an array of tables ([[secrets]])")
    grants: dict[str, Grant] = {}
    for index, entry in enumerate(entries):
        name = f"{where}: secrets[{index}]"
        secret, grant = _grant(entry, name)
        if secret in grants:
            raise ValueError(f"{name}: the same secret is given twice")
        grants[secret] = grant
    return grants


def _grant(entry: Any, name: str) -> tuple[str, Grant]:
    _check_table(entry, _SECRET_KEYS, name)
    secret = _string(entry, "secret", name, "")
    if not secret:
        raise ValueError(f"{name}: 'secret' must be a non-empty string")
    ttl = entry.get("ttl", DEFAULT_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError(f"{name}: 'ttl' must be a whole number of seconds > 0")
    authorizations = entry.get("authorizations", [])
    if not isinstance(authorizations, list):
        raise ValueError(f"{name}: 'authorizations' must be an array of tables")
    reply = {
        "ttl": ttl,
        "identity": _string(entry, "identity", name, ""),
        "identity_url": _string(entry, "identity_url", name, ""),
        "authorizations": [
            _authorization(a, f"{name}.authorizations[{i}]") for i, a in enumerate(authorizations)
        ],
    }
    return secret, Grant(reply)


def _authorization(entry: Any, name: str) -> dict[str, Any]:
    _check_table(entry, _AUTHORIZATION_KEYS, name)
    topic = _string(entry, "topic", name, None)
    channels = _strings(entry, "channels", name)
    permissions = _strings(entry, "permissions", name)
    for permission in permissions:
        if permission not in PERMISSIONS:
            raise ValueError(f"{name}: unknown permission {permission!r} (subscribe, publish)")
    for pattern in [topic, *channels]:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f"{name}: bad regular expression {pattern!r}: {err}") from None
    return {"topic": topic, "channels": channels, "permissions": permissions}


def _check_table(entry: Any, keys: frozenset[str], name: str) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"{name}: must be a table")
    unknown = set(entry) - keys
    if unknown:
        raise ValueError(f"{name}: unknown key {sorted(unknown)[0]!r}")


def _string(entry: dict[str, Any], key: str, name: str, default: str | None) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{name}: {key!r} must be a string")
    return value


def _strings(entry: dict[str, Any], key: str, name: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name}: {key!r} must be an array of strings")
    return value
