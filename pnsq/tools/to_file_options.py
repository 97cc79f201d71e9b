"""The flags of ``pnsq to-file``: nsq_to_file 1.3's names and defaults, and its checks across
flags (with NSQ's wording), kept apart from the archiver that runs on them."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from .. import wire
from .._internal import flags
from .._internal.flags import Flag, flag
from . import client_setup as common
from .to_file_files import FileSettings, filename_template


@dataclass(frozen=True)
class ToFileOptions:
    topics: tuple[str, ...] = ()
    topic_pattern: str = ""
    topic_refresh: float = 60.0
    channel: str = "nsq_to_file"
    nsqd_tcp_addresses: tuple[str, ...] = ()
    lookupd_http_addresses: tuple[str, ...] = ()
    consumer_opts: tuple[str, ...] = ()
    max_in_flight: int = 200
    http_client_connect_timeout: float = 2.0
    http_client_request_timeout: float = 5.0
    output_dir: str = "/tmp"
    work_dir: str = ""
    datetime_format: str = "%Y-%m-%d_%H"
    filename_format: str = "<TOPIC>.<HOST><REV>.<DATETIME>.log"
    host_identifier: str = ""
    gzip: bool = False
    gzip_level: int = 6
    skip_empty_files: bool = False
    rotate_size: int = 0
    rotate_interval: float = 0.0
    sync_interval: float = 30.0
    status_interval: float = 10.0


# fmt: off
FLAGS: tuple[Flag, ...] = (
    common.TOPICS,
    flag("topic-pattern", flags.string, "only log topics matching this regular expression"),
    flag("topic-refresh", flags.positive_duration,
         "how frequently the topic list should be refreshed"),
    common.CHANNEL,
    common.NSQD_TCP_ADDRESSES,
    common.LOOKUPD_HTTP_ADDRESSES,
    common.CONSUMER_OPT,
    common.MAX_IN_FLIGHT,
    flag("http-client-connect-timeout", flags.positive_duration, "timeout for HTTP connect"),
    flag("http-client-request-timeout", flags.positive_duration, "timeout for HTTP request"),
    flag("output-dir", flags.string, "directory to write output files to"),
    flag("work-dir", flags.string,
         "directory for in-progress files before moving to output-dir", default_text="output-dir"),
    flag("datetime-format", flags.string,
         "strftime compatible format for <DATETIME> in filename format"),
    flag("filename-format", flags.string,
         "output filename format (<TOPIC>, <HOST>, <PID>, <DATETIME>, <REV> are replaced. "
         "<REV> is increased when file already exists)"),
    flag("host-identifier", flags.string, "value to output in log filename in place of "
         "hostname. <SHORT_HOST> and <HOSTNAME> are valid replacement tokens"),
    flag("gzip", flags.boolean, "gzip output files", bare=True),
    flag("gzip-level", flags.integer, "gzip compression level (1-9, 1=BestSpeed, 9=BestCompression)"),
    flag("skip-empty-files", flags.boolean, "skip writing empty files", bare=True),
    flag("rotate-size", flags.natural, "rotate the file when it grows bigger than this many bytes"),
    flag("rotate-interval", flags.duration, "rotate the file every duration (0: never)"),
    flag("sync-interval", flags.positive_duration, "sync file to disk every duration"),
    flag("status-interval", flags.duration, "print a status line every duration (0: never)"),
)
# fmt: on


def finish(options: ToFileOptions) -> ToFileOptions:
    """NSQ's checks across flags (ValueError with NSQ's wording); work-dir defaults to
    output-dir."""
    if not options.channel:
        raise ValueError("--channel is required")
    if not 1 <= options.gzip_level <= 9:
        raise ValueError(f"invalid --gzip-level value ({options.gzip_level}), should be 1-9")
    for topic in options.topics:
        if not wire.is_valid_topic_name(topic):
            raise ValueError(f"invalid --topic name {topic!r}")
    if not wire.is_valid_channel_name(options.channel):
        raise ValueError(f"invalid --channel name {options.channel!r}")
    if not options.topics and not options.topic_pattern:
        raise ValueError("--topic or --topic-pattern required")
    if not options.topics and not options.lookupd_http_addresses:
        raise ValueError("--lookupd-http-address must be specified when no --topic specified")
    if options.max_in_flight < 1:
        raise ValueError("--max-in-flight must be at least 1")
    try:
        re.compile(options.topic_pattern)
    except re.error as exc:
        raise ValueError(f"invalid --topic-pattern {options.topic_pattern!r}: {exc}") from None
    options = dataclasses.replace(options, work_dir=options.work_dir or options.output_dir)
    filename_template(options.filename_format, "t", file_settings(options))  # <REV> check
    consumer_arguments(options)  # addresses and --consumer-opt names
    return options


def consumer_arguments(options: ToFileOptions) -> dict[str, Any]:
    # an archive never drops a message unwritten (relay); --max-in-flight wins over
    # --consumer-opt=max_in_flight (as in nsq_to_file): the batches are sized from it
    kwargs = common.consumer_arguments("to_file", options, relay=True)
    kwargs["max_in_flight"] = options.max_in_flight
    return kwargs


def file_settings(options: ToFileOptions) -> FileSettings:
    return FileSettings(
        output_dir=options.output_dir,
        work_dir=options.work_dir or options.output_dir,
        datetime_format=options.datetime_format,
        gzip_level=options.gzip_level if options.gzip else 0,
        rotate_size=options.rotate_size,
        rotate_interval=options.rotate_interval,
        skip_empty_files=options.skip_empty_files,
    )
