"""GET /metrics for both daemons: a registry of their own, and its answer in the asked format.

Each daemon owns an ``Exposition``: a ``CollectorRegistry`` (never prometheus_client's global
``REGISTRY``, so two daemons in one process, as in the tests, each show only their own state)
holding the process, GC and platform collectors and the daemon's collector, which reads the
live state at scrape time (nsqd reads its own families in slices beforehand, ``nsqd.scrape``,
and hands them to ``encode``). Nothing is counted per message: a scrape costs what it reads. The
daemons make their ``Exposition`` at the first scrape, so that an nsqd or lookupd nobody
scrapes never loads prometheus_client (~6 MiB of RSS).

prometheus_client's encoders build each line from a ``Sample`` (a dict of labels, sorted and
escaped per sample): about 7 µs a line, so 1,000 topics x 3 channels (some 40,000 lines) took
230 ms. The families with a line per topic, channel or client are therefore ``LineFamily``:
their lines are written once, in the form both formats share for gauges and summaries (the
label text of a channel is built once for all its metrics), and the encoder only prefixes
the ``# HELP``/``# TYPE`` header. Every other family goes through prometheus_client's encoder,
chosen by ``Accept`` (``choose_encoder``), which also ends OpenMetrics with ``# EOF``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import cast

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .http_server import Response

__all__ = ["Exposition", "LineFamily", "go_float", "label_text", "number"]

# Floats as Go writes them (``+Inf``, ``1e+06``), as Prometheus expects them in values and ``le``.
go_float = cast(Callable[[float], str], floatToGoString)

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def label_text(pairs: Iterable[tuple[str, str]]) -> str:
    """``{a="x",b="y"}``: label values escaped as both formats escape them."""
    return "{" + ",".join(f'{name}="{value.translate(_ESCAPES)}"' for name, value in pairs) + "}"


def number(value: float) -> str:
    """A sample value: integers as digits, floats as Go writes them (``+Inf``, ``NaN``)."""
    if isinstance(value, int):
        return str(int(value))  # a bool counts as 1 or 0
    return go_float(value)


class LineFamily(Metric):
    """A metric family whose samples are already exposition lines (``add``); see the module
    docstring. Only ``Exposition`` writes it out: its ``samples`` stay empty."""

    def __init__(
        self, name: str, documentation: str, typ: str = "gauge", lines: list[str] | None = None
    ) -> None:
        super().__init__(name, documentation, typ)
        self.lines: list[str] = [] if lines is None else lines

    def add(self, labels: str, value: float) -> None:
        """One sample; ``labels`` is the text of ``label_text`` (braces included)."""
        self.lines.append(f"{self.name}{labels} {number(value)}\n")

    def header(self) -> str:
        help_text = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n"

    def text(self) -> str:
        """The family as both formats write it."""
        return self.header() + "".join(self.lines)


class _Metrics:
    """Metric families already collected, as the collector prometheus_client's encoders take."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Sequence[Metric]:
        return self._metrics


class Exposition:
    """A daemon's registry: process, GC and platform metrics, plus the daemon's collectors."""

    def __init__(self, *collectors: Collector) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        for collector in collectors:
            self.registry.register(collector)

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def encode(
        self,
        accept: bytes | None = None,
        collected: Sequence[Metric] = (),
        written: Sequence[bytes] = (),
    ) -> tuple[bytes, str]:
        """The metrics in the format ``accept`` asks for, and its content type. ``collected``
        and ``written``: families the daemon read beforehand (nsqd's, in slices), the
        former after the registry's, the latter ``LineFamily.text``s, first."""
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        lines: list[str] = []
        others: list[Metric] = []
        for metric in [*self.registry.collect(), *collected]:
            if isinstance(metric, LineFamily):
                lines.append(metric.header())
                lines += metric.lines
            else:
                others.append(metric)
        # The others last: OpenMetrics' encoder ends its output with "# EOF".
        text = "".join(lines).encode()
        return b"".join([*written, text, encoder(_Metrics(others))]), content_type

    def response(
        self,
        accept: bytes | None,
        collected: Sequence[Metric] = (),
        written: Sequence[bytes] = (),
    ) -> Response:
        """GET /metrics' answer (``accept``: the request's Accept header; see ``encode``)."""
        body, content_type = self.encode(accept, collected, written)
        return Response(200, body, content_type.encode())
