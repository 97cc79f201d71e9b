"""Running the admin: hypercorn's trio worker serving the app, beside the sampler.

Both live in one nursery, so ``serve`` stops as a whole: ``stop()`` (or SIGTERM/SIGINT under
``run``) and the listener, the open event streams and the sampler all end. ``serve`` reports
the bound ``(host, port)`` through ``task_status`` so tests can listen on port 0.

One httpx client serves every outbound call (nodes, lookupds, notifications); its TLS context
comes from the ``--http-client-tls-*`` flags as nsqadmin builds its own: the system's CAs unless
a root CA file is given, an optional client certificate, and verification off only when asked.
"""

from __future__ import annotations

import logging
import ssl
import time

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from .._internal import daemon
from .._internal.netaddr import split_host_port
from .app import Admin
from .cluster import Cluster
from .notify import Notifier
from .options import AdminOptions

log = logging.getLogger("pnsq.admin")
# httpx logs every request at INFO: the sampler alone would log each node every few seconds.
logging.getLogger("httpx").setLevel(logging.WARNING)


class AdminServer:
    def __init__(self, options: AdminOptions) -> None:
        self.options = options
        self.http_address: tuple[str, int] | None = None
        self.admin: Admin | None = None
        self._scope: trio.CancelScope | None = None

    async def serve(
        self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        options = self.options
        timeout = httpx.Timeout(
            options.http_client_request_timeout, connect=options.http_client_connect_timeout
        )
        limits = httpx.Limits(max_keepalive_connections=64)
        verify = client_ssl_context(options)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, verify=verify) as client:
            notifier = Notifier(
                options.notification_http_endpoint, client, options.http_client_request_timeout
            )
            self.admin = admin = Admin(options, Cluster(options, client), notifier)
            config = Config()
            host, port = split_host_port(options.http_address)
            config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
            config.graceful_timeout = 1.0
            config.accesslog = None
            config.errorlog = logging.getLogger("pnsq.admin.http")  # NSQ's log format
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                binds = await nursery.start(hypercorn_serve, admin.app(), config)
                self.http_address = split_host_port(binds[0].split("://", 1)[1])
                log.info("HTTP: listening on %s:%d", *self.http_address)
                nursery.start_soon(self._sample_forever, admin)
                nursery.start_soon(notifier.run)
                task_status.started(self.http_address)

    async def _sample_forever(self, admin: Admin) -> None:
        interval = self.options.sample_interval
        next_at = trio.current_time()
        while True:
            await admin.sample(time.time())
            next_at = max(next_at + interval, trio.current_time())
            await trio.sleep_until(next_at)

    def stop(self) -> None:
        """End ``serve``: the listener, the event streams and the sampler."""
        if self._scope is not None:
            self._scope.cancel()


def client_ssl_context(options: AdminOptions) -> ssl.SSLContext:
    """The TLS settings for HTTPS nodes; OSError naming the file that could not be used."""
    ca, cert, key = (
        options.http_client_tls_root_ca_file,
        options.http_client_tls_cert,
        options.http_client_tls_key,
    )
    try:
        context = ssl.create_default_context(cafile=ca or None)
    except OSError as err:
        raise OSError(f"failed to read TLS root CA file {ca} - {err}") from None
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except OSError as err:
            raise OSError(f"failed to load TLS certificate {cert} and key {key} - {err}") from None
    if options.http_client_tls_insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def run(options: AdminOptions) -> None:
    """Serve until SIGTERM/SIGINT (exit 0). Called by ``pnsq admin``; exits 1 if it cannot start."""
    daemon.run(AdminServer(options), log)
