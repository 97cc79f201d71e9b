"""systemd's readiness protocol: tell the service manager when a daemon is ready and stopping.

Under a ``Type=notify`` unit systemd sets ``NOTIFY_SOCKET`` to a unix datagram socket and waits
for ``READY=1`` before it starts the units ordered after this one (a consumer unit that needs
nsqd listening), and shows ``STOPPING=1`` in ``systemctl status`` while a drain or flush runs.
Without the variable (a terminal, Docker, Kubernetes) nothing is sent, so the daemons behave as
before. A lost notification must never stop a daemon: systemd then times the start out, which
the operator sees in the journal, whereas raising here would lose the node. The socket is
non-blocking so a service manager that does not read cannot stall the trio loop.

An address starting with ``@`` is in Linux's abstract namespace: the ``@`` stands for a NUL
byte. Protocol: sd_notify(3).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("pnsq.sd_notify")

READY = "READY=1"
STOPPING = "STOPPING=1"


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1`` ...) to ``$NOTIFY_SOCKET`` if it is set.

    Returns whether a datagram was sent; failures are logged at debug level, never raised.
    """
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address[0] == "@":
        address = "\0" + address[1:]
    elif address[0] != "/":
        log.debug("NOTIFY_SOCKET=%r: only unix socket addresses are supported", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(state.encode(), address)
    except OSError as exc:
        log.debug("could not send %s to NOTIFY_SOCKET=%r: %s", state, environ["NOTIFY_SOCKET"], exc)
        return False
    return True
