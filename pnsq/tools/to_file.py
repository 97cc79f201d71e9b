"""``pnsq to-file``: archive topics to newline-delimited files, like NSQ's nsq_to_file.

One consumer and one ``TopicLogger`` per topic, all in one trio loop. Topics come from
``--topic``, or (without it) from every lookupd's ``/topics``, polled at once and then every
``--topic-refresh``, filtered by ``--topic-pattern`` (a regular expression searched in the name,
as Go's ``regexp.MatchString`` does). Messages are FINed only after their batch is fsynced
(``to_file_logger``); files are named, rotated and moved as NSQ does (``to_file_files``).
SIGINT/SIGTERM: the consumers drain (CLS), every batch is synced and FINed, every file closed and
moved to the output dir, exit 0. SIGHUP closes the current files; the next batch opens new ones.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from ..client import Consumer, NSQError
from ..client._address import parse_address
from ..client._http import HTTPConnection
from .runner import run_tool
from .status import Rate, StatusLine
from .to_file_files import TopicFiles, filename_template
from .to_file_logger import TopicLogger
from .to_file_options import ToFileOptions, consumer_arguments, file_settings, finish

log = logging.getLogger("pnsq.tools.to_file")


def run(options: ToFileOptions) -> int:
    try:
        archiver = Archiver(finish(options))
    except ValueError as exc:
        print(f"pnsq to-file: {exc}", file=sys.stderr)
        return 1
    return run_tool("to-file", archiver.main)


class Archiver:
    """Every topic being archived: its consumer, its logger, and the topic discovery."""

    def __init__(self, options: ToFileOptions) -> None:
        self.options = options
        self.settings = file_settings(options)
        self.consumer_kwargs = consumer_arguments(options)
        self.pattern = re.compile(options.topic_pattern)
        self.loggers: dict[str, TopicLogger] = {}
        self._topics: anyio.abc.TaskGroup | None = None

    def written(self) -> int:
        return sum(logger.written for logger in self.loggers.values())

    def files_written(self) -> int:
        return sum(len(logger.files.closed_files) for logger in self.loggers.values())

    async def main(self, stop: anyio.Event) -> int:
        try:
            return await self._main(stop)
        except BaseExceptionGroup as group:
            # task groups wrap the error (and the runner's own nursery would wrap it again):
            # say the cause in one line here; unFINed messages go back to nsqd on their timeout
            cause = _first_error(group)
            if cause is None:
                raise
            print(f"pnsq to-file: {cause}", file=sys.stderr)
            return 1

    async def _main(self, stop: anyio.Event) -> int:
        status = StatusLine(self._describe(), interval=self.options.status_interval)
        async with anyio.create_task_group() as outer:
            outer.start_soon(status.run)
            outer.start_soon(self._watch_sighup)
            async with anyio.create_task_group() as topics:
                self._topics = topics
                topics.start_soon(stop.wait)  # keeps the group open while no topic exists yet
                for topic in self.options.topics:
                    self.add(topic, stop)
                if not self.options.topics:
                    outer.start_soon(self._discover, stop)
            outer.cancel_scope.cancel()
        if self.options.status_interval > 0:
            status.final()
        return 0

    def add(self, topic: str, stop: anyio.Event) -> None:
        """Start archiving ``topic`` (unless known, or not matching --topic-pattern)."""
        if topic in self.loggers or not self.pattern.search(topic) or self._topics is None:
            return
        template = filename_template(
            self.options.filename_format,
            topic,
            self.settings,
            host_identifier=self.options.host_identifier,
        )
        logger = TopicLogger(
            TopicFiles(template, self.settings),
            max_in_flight=self.options.max_in_flight,
            sync_interval=self.options.sync_interval,
        )
        consumer = Consumer(topic, self.options.channel, logger.handle, **self.consumer_kwargs)
        logger.consumer = consumer
        self.loggers[topic] = logger
        self._topics.start_soon(_archive, consumer, logger, stop)

    async def _discover(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            for topic in await self._lookupd_topics():
                if stop.is_set():
                    return
                try:
                    self.add(topic, stop)
                except ValueError as exc:
                    log.warning("cannot archive topic %r: %s", topic, exc)
            with anyio.move_on_after(self.options.topic_refresh):
                await stop.wait()

    async def _lookupd_topics(self) -> set[str]:
        found: set[str] = set()
        for address in self.options.lookupd_http_addresses:
            timeout = (
                self.options.http_client_connect_timeout + self.options.http_client_request_timeout
            )  # one deadline for the whole exchange: connecting, then the request
            connection = HTTPConnection(*parse_address(address, 4161), timeout=timeout)
            try:
                status, body = await connection.request("GET", "/topics")
                if status != 200:
                    raise NSQError(f"HTTP {status}")
                found.update(_topics_of(json.loads(body)))
            except (NSQError, ValueError, KeyError, TypeError) as exc:
                log.warning("could not retrieve topic list from %s: %s", address, exc)
            finally:
                await connection.aclose()
        return found

    async def _watch_sighup(self) -> None:
        with anyio.open_signal_receiver(signal.SIGHUP) as signals:
            async for _ in signals:
                for logger in self.loggers.values():
                    logger.reopen()

    def _describe(self) -> Callable[[float], str]:
        rate = Rate()

        def describe(elapsed: float) -> str:
            written = self.written()
            return (
                f"to-file: {written:,} messages ({rate.update(written):,.0f}/s), "
                f"{self.files_written()} files done, {len(self.loggers)} topic(s)"
            )

        return describe


def _first_error(group: BaseExceptionGroup[Any]) -> BaseException | None:
    """The first error a user can act on (disk, nsqd, bad value) inside nested groups."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found = _first_error(exc)
            if found is not None:
                return found
        elif isinstance(exc, OSError | ValueError | NSQError):
            return exc
    return None


def _topics_of(answer: Any) -> list[str]:
    """``{"topics": [...]}``, or the old ``{"data": {"topics": [...]}}``."""
    if "topics" not in answer and "data" in answer:
        answer = answer["data"]
    return [str(topic) for topic in answer["topics"] or ()]


async def _archive(consumer: Consumer, logger: TopicLogger, stop: anyio.Event) -> None:
    """Consume and log one topic until ``stop``; then drain, sync, and close its file."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer.run)
        tg.start_soon(logger.run)
        await stop.wait()
        logger.start_closing()
        await consumer.close()
        await logger.aclose()
        tg.cancel_scope.cancel()
