"""``pnsq admin``: its flags are ``pnsq.admin.options.FLAGS``."""

from __future__ import annotations

from ..admin import options
from .table import Spec, build_command

SPEC = Spec(
    name="admin",
    options=options.AdminOptions,
    flags=options.FLAGS,
    run="pnsq.admin.server:run",
    help="Run the admin web view (like nsqadmin, with live charts and queue peeking).",
    program="nsqadmin",
    config=True,
    finish=options.finish,
)
command = build_command(SPEC)
