"""The phases of bench/run.py that start their own nsqd: durable, backlog and memory.

Why separate: each needs nsqd started with the flags its figure is about (``--sync-every=1``,
a small or a huge ``--mem-queue-size``) and a fresh process whose RSS is its own, so none of
them can share the throughput phases' nsqd. Each stops its nsqd by PID when done; durable
also kills one with SIGKILL on purpose and restarts it on the same data to count survivors.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nsq_load import HARD_CAP_S, run_pub, run_writer
from phases import CHANNEL, PhaseResult, Subject, channel_of, check_count, measured, wait_for

if TYPE_CHECKING:
    import argparse

    from nsqd_process import Nsqd

SYNC_SETTLE_S = 2.5  # one default --sync-timeout (2 s): the last disk round written


def depth_of(nsqd: Nsqd, topic: str) -> int:
    """Messages nsqd holds for ``topic``: the topic's own queue plus every channel's."""
    stats = nsqd.topic_stats(topic)
    channels = sum(int(c["depth"]) for c in stats.get("channels", []))
    return int(stats.get("depth", 0)) + channels


def durable(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    """8 publishers of single PUBs; every OK must survive ``kill -9`` (counted after restart)."""
    flags, topic = ["--sync-every=1", "--mem-queue-size=0"], "durable_bench"
    nsqd = subject.start("durable", flags)
    nsqd.create(topic, CHANNEL)
    conns = args.durable_connections
    phase = measured(
        nsqd, lambda: run_pub(nsqd.tcp, topic, args.size, conns, args.runfor), "durable"
    )
    acked = phase.detail["count"]
    check_count(phase, "durable PUB", acked, nsqd.topic_stats(topic)["message_count"])
    wait_for(lambda: channel_of(nsqd.topic_stats(topic)).get("depth", 0) >= acked)
    nsqd.stop(kill=True)
    again = subject.start("durable-restarted", flags, data=subject.workdir / "durable")
    try:
        held = depth_of(again, topic)
    finally:
        again.stop()
    phase.detail["held_after_kill9"] = held
    phase.figures["durable_lost"] = max(0, acked - held)
    phase.lines.append(f"  after kill -9 and a restart nsqd holds {held} of {acked} acknowledged")
    return phase


def _own(subject: Subject, name: str, mem_queue: int) -> tuple[Nsqd, str]:
    """An own nsqd with topic ``<name>_bench`` and its channel ``ch``."""
    nsqd, topic = subject.start(name, [f"--mem-queue-size={mem_queue}"]), f"{name}_bench"
    nsqd.create(topic, CHANNEL)
    return nsqd, topic


def _publish(
    nsqd: Nsqd, topic: str, args: argparse.Namespace, conns: int, count: int, key: str
) -> PhaseResult:
    """``count`` messages published by MPUB on ``conns`` connections, no consumer."""
    size, batch = args.size, args.batch_size
    return measured(
        nsqd, lambda: run_writer(nsqd.tcp, topic, size, batch, conns, HARD_CAP_S, count), key
    )


def backlog(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    """``--backlog`` messages on disk behind NSQ's default memory queue, no consumer: RSS."""
    nsqd, topic = _own(subject, "backlog", 10000)
    phase = _publish(nsqd, topic, args, args.writer_connections, args.backlog, "backlog_rate")
    published = phase.detail["count"]
    wait_for(lambda: channel_of(nsqd.topic_stats(topic)).get("depth", 0) >= published, HARD_CAP_S)
    time.sleep(SYNC_SETTLE_S)
    channel = channel_of(nsqd.topic_stats(topic))
    phase.figures = {"backlog_rss": nsqd.rss_mib()}
    phase.detail.update(
        published=published,
        depth=channel.get("depth"),
        backend_depth=channel.get("backend_depth"),
        peak_rss_mib=nsqd.status_kib("VmHWM") / 1024,
    )
    phase.lines.append(
        f"  {published:,} messages published, channel depth {channel.get('depth')} "
        f"(on disk {channel.get('backend_depth')}): RSS {phase.figures['backlog_rss']:.1f} MiB"
    )
    nsqd.stop()
    return phase


def memory(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    """``--held`` messages in a topic's channel's memory queue, no consumer: RSS growth."""
    nsqd, topic = _own(subject, "memory", 10000000)
    idle = nsqd.rss_mib()
    phase = _publish(nsqd, topic, args, 1, args.held, "memory_rate")
    size = args.size
    published = phase.detail["count"]
    wait_for(lambda: channel_of(nsqd.topic_stats(topic)).get("depth", 0) >= published)
    held_rss = nsqd.rss_mib()
    payload_mib = published * size / (1024 * 1024)
    phase.figures = {"memory_ratio": (held_rss - idle) / payload_mib if payload_mib else 0.0}
    phase.detail.update(idle_rss_mib=idle, held_rss_mib=held_rss, payload_mib=payload_mib)
    phase.lines.append(
        f"  {published:,} x {size} B held: RSS {idle:.1f} -> {held_rss:.1f} MiB, growth "
        f"{held_rss - idle:.1f} MiB for {payload_mib:.1f} MiB of payload "
        f"= {phase.figures['memory_ratio']:.2f}x"
    )
    nsqd.stop()
    return phase
