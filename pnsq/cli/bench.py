"""``pnsq bench pub|sub``: a click group of two flag-table commands (``pnsq.tools.bench``)."""

from __future__ import annotations

import click

from ..tools import bench
from .table import Spec, build_command

PUB = Spec(
    name="pub",
    options=bench.BenchPubOptions,
    flags=bench.PUB_FLAGS,
    run="pnsq.tools.bench:run_pub",
    finish=bench.check_pub,
    help="Publish flat out for --runfor, print the rate (like bench_writer).",
    epilog="""\b
Example:
  pnsq bench pub --nsqd-tcp-address=127.0.0.1:4150 --runfor=10s --size=200 --batch-size=200
""",
)
SUB = Spec(
    name="sub",
    options=bench.BenchSubOptions,
    flags=bench.SUB_FLAGS,
    run="pnsq.tools.bench:run_sub",
    finish=bench.check_sub,
    help="Consume flat out for --runfor, print the rate (like bench_reader).",
    epilog="""\b
Example:
  pnsq bench sub --nsqd-tcp-address=127.0.0.1:4150 --runfor=10s --rdy=2500
""",
)

command = click.Group(
    "bench",
    commands={"pub": build_command(PUB), "sub": build_command(SUB)},
    help="Measure an nsqd, pnsq's or Go's (like bench_writer/bench_reader).",
    context_settings={"help_option_names": ["-h", "--help"]},
)
