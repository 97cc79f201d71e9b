"""What a client connection tells nsqd about itself, and its timeouts.

Its own module so that the blocking ``SyncProducer`` and the async classes share it without the
blocking one importing the anyio connection.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

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

    def identify(self) -> dict[str, Any]:
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
        }
