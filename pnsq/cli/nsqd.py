"""``pnsq nsqd``: its flags are ``pnsq.nsqd.options.FLAGS``."""

from __future__ import annotations

from ..nsqd import options
from .table import Spec, build_command

SPEC = Spec(
    name="nsqd",
    options=options.Options,
    flags=options.FLAGS,
    run="pnsq.nsqd.daemon:run",
    help="Run nsqd, the daemon that receives, queues and delivers messages to clients.",
    program="nsqd",
    config=True,
    finish=options.finish,
    deprecated=options.DEPRECATED,
    ignored_config_keys=options.IGNORED_CONFIG_KEYS,
)
command = build_command(SPEC)
