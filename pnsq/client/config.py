"""What a client connection tells nsqd about itself, its timeouts, and its upgrades.

Its own module so that the blocking ``SyncProducer`` and the async classes share it without the
blocking one importing the anyio connection. The security and compression settings are also
keyword arguments of every public class (``Producer(addr, tls=True, auth_secret=b"s")``):
``ConnectionOptions`` types them once and ``with_options`` folds them into a config.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, TypedDict

USER_AGENT = "pnsq-client/0.1"


@dataclass(frozen=True)
class ConnectionConfig:
    """What a connection sends in IDENTIFY, and its timeouts (seconds)."""

    client_id: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    hostname: str = field(default_factory=socket.gethostname)
    user_agent: str = USER_AGENT
    heartbeat_interval: float = 30.0
    output_buffer_size: int = 16384
    output_buffer_timeout: float = 0.25
    msg_timeout: float = 0.0  # 0: nsqd's default
    sample_rate: int = 0
    auth_secret: bytes | None = None
    connect_timeout: float = 1.0
    # True: TLS with the system's CAs, checking nsqd's certificate against its address (or
    # tls_server_hostname); an SSLContext: TLS exactly as that context says.
    tls: bool | ssl.SSLContext = False
    tls_server_hostname: str | None = None
    snappy: bool = False
    deflate: bool = False
    deflate_level: int = 6
    _tls_context: ssl.SSLContext | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.snappy and self.deflate:
            raise ValueError("snappy and deflate cannot be used together (nsqd refuses both)")
        if not 1 <= self.deflate_level <= 9:
            raise ValueError(f"deflate_level {self.deflate_level} not in 1..9")
        if isinstance(self.auth_secret, str):
            object.__setattr__(self, "auth_secret", self.auth_secret.encode())
        # Built once per config, not per connection: loading the system's CAs takes milliseconds.
        if isinstance(self.tls, ssl.SSLContext):
            object.__setattr__(self, "_tls_context", self.tls)
        elif self.tls:
            object.__setattr__(self, "_tls_context", ssl.create_default_context())

    @property
    def tls_context(self) -> ssl.SSLContext | None:
        """The context the TLS upgrade uses, None without TLS."""
        return self._tls_context

    def identify(self) -> dict[str, Any]:
        upgrades: dict[str, Any] = {}
        if self.tls:
            upgrades["tls_v1"] = True
        if self.snappy:
            upgrades["snappy"] = True
        if self.deflate:
            upgrades["deflate"] = True
            upgrades["deflate_level"] = self.deflate_level
        return {
            "client_id": self.client_id,
            "hostname": self.hostname,
            "user_agent": self.user_agent,
            "feature_negotiation": True,
            "heartbeat_interval": int(self.heartbeat_interval * 1000),
            "output_buffer_size": self.output_buffer_size,
            "output_buffer_timeout": int(self.output_buffer_timeout * 1000),
            "msg_timeout": int(self.msg_timeout * 1000),
            "sample_rate": self.sample_rate,
            **upgrades,
        }


class ConnectionOptions(TypedDict, total=False):
    """The settings every public client class also takes as keyword arguments."""

    tls: bool | ssl.SSLContext
    tls_server_hostname: str | None
    snappy: bool
    deflate: bool
    deflate_level: int
    auth_secret: bytes | str | None


def with_options(config: ConnectionConfig | None, options: ConnectionOptions) -> ConnectionConfig:
    """``config`` (or the default one) with the keyword arguments a class was given on top."""
    config = config or ConnectionConfig()
    return dataclasses.replace(config, **options) if options else config  # type: ignore[arg-type]
