"""``pnsq authd``: its flags are ``pnsq.authd.options.FLAGS``."""

from __future__ import annotations

from ..authd import options
from .table import Spec, build_command

SPEC = Spec(
    name="authd",
    options=options.AuthdOptions,
    flags=options.FLAGS,
    run="pnsq.authd.daemon:run",
    help="Run an auth server for nsqd's --auth-http-address (secrets in a TOML file).",
    program="nsqauthd",
)
command = build_command(SPEC)
