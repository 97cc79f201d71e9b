"""pnsq's Python client: producers, a producer pool and a consumer for any NSQ 1.3 nsqd.

The async classes are built on anyio and run under asyncio and trio alike; ``SyncProducer`` is a
plain blocking socket. See the README's "Python client" section.
"""

from __future__ import annotations

from .codecs import JSON, MSGPACK, RAW, Codec, JSONCodec, MsgpackCodec, RawCodec
from .config import ConnectionConfig, ConnectionOptions
from .consumer import Consumer, ConsumerStats
from .errors import (
    AuthError,
    NSQConnectionError,
    NSQError,
    NSQProtocolError,
    PublishError,
    ServerError,
)
from .message import Message
from .middleware import Metrics, Middleware, decoding, logging_middleware
from .pool import ProducerPool
from .producer import Producer
from .rdy import ReadyPlanner
from .sync import SyncProducer

__all__ = [
    "JSON",
    "MSGPACK",
    "RAW",
    "AuthError",
    "Codec",
    "ConnectionConfig",
    "ConnectionOptions",
    "Consumer",
    "ConsumerStats",
    "JSONCodec",
    "Message",
    "Metrics",
    "Middleware",
    "MsgpackCodec",
    "NSQConnectionError",
    "NSQError",
    "NSQProtocolError",
    "Producer",
    "ProducerPool",
    "PublishError",
    "RawCodec",
    "ReadyPlanner",
    "ServerError",
    "SyncProducer",
    "decoding",
    "logging_middleware",
]
