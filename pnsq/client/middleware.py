"""Middleware: layers around a handler, onion-style.

A middleware is ``async def layer(message, next_handler) -> None``: it may act before and after
``await next_handler(message)``, or not call it. The first in the consumer's list is outermost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from .codecs import Codec
from .message import Message

AsyncHandler = Callable[[Message], Awaitable[None]]
Middleware = Callable[[Message, AsyncHandler], Awaitable[None]]


def compose(handler: AsyncHandler, middleware: Sequence[Middleware]) -> AsyncHandler:
    """The handler wrapped by every layer, ``middleware[0]`` outermost."""
    for layer in reversed(middleware):
        handler = _bind(layer, handler)
    return handler


def _bind(layer: Middleware, inner: AsyncHandler) -> AsyncHandler:
    async def call(message: Message) -> None:
        await layer(message, inner)

    return call


def logging_middleware(logger: logging.Logger, level: int = logging.DEBUG) -> Middleware:
    """Logs each message and how long its handler took; failures at WARNING."""

    async def layer(message: Message, handler: AsyncHandler) -> None:
        start = time.perf_counter()
        try:
            await handler(message)
        except Exception:
            logger.warning("message %s failed (attempt %d)", message.id.decode(), message.attempts)
            raise
        logger.log(
            level, "message %s handled in %.6fs", message.id.decode(), time.perf_counter() - start
        )

    return layer


@dataclass
class Metrics:
    """Counts and handler time; use the instance itself as a middleware."""

    handled: int = 0
    failed: int = 0
    seconds: float = 0.0

    async def __call__(self, message: Message, handler: AsyncHandler) -> None:
        start = time.perf_counter()
        try:
            await handler(message)
        except Exception:
            self.failed += 1
            raise
        finally:
            self.seconds += time.perf_counter() - start
        self.handled += 1


def decoding(codec: Codec) -> Middleware:
    """Decodes the body with ``codec`` before the handler (``message.data``); a body that does
    not decode fails the message like a handler error."""

    async def layer(message: Message, handler: AsyncHandler) -> None:
        message.codec = codec
        message.data  # noqa: B018 - decode now, so a bad body fails here
        await handler(message)

    return layer
