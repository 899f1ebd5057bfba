"""The server's process model: gunicorn's arbiter over identical workers, waitress's HTTP in each.

Operators get what they know from gunicorn: ``--workers N`` identical processes behind one port,
each loading its own copy of the model, replaced when one dies, SIGTERM draining them all
(SIGHUP reloads, SIGTTIN/SIGTTOU add or remove a worker). Inside each worker, waitress speaks
HTTP: it reads request headers and bodies asynchronously, so a slow or stalled client costs a
socket, not a thread (gunicorn's own threaded worker gives a thread to a connection as soon as its
first byte arrives: 150 clients dribbling headers block every thread; measured in docs/RUNTIME.md),
and it tells the app when a client has gone away (``waitress.client_disconnected``), which
:mod:`mt.web.wsgi` turns into dropped model work. Workers share no memory: every piece of state a
request may need later (downloads, rate-limit counters, the sentence cache) is in the shared store.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker

log = logging.getLogger("mt.server")

DRAIN_MIN_BYTES = 8 << 20  # bodies over the app's cap are buffered (then refused in JSON) up to this


def drain_limit(max_body_bytes: int) -> int:
    """Past this waitress refuses a body itself (plain text); below it the app answers a JSON 413."""
    return max(DRAIN_MIN_BYTES, 4 * max_body_bytes)


def option(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value is None else value


class WaitressWorker(Worker):
    """One gunicorn worker serving its app with waitress on the arbiter's listening sockets."""

    def handle_quit(self, sig, frame):
        # SIGINT/SIGQUIT drain like SIGTERM: in-flight requests finish (within the graceful timeout)
        self.alive = False

    def run(self) -> None:
        from waitress import create_server, wasyncore

        settings = getattr(self.app, "settings", None)  # None under `gunicorn -k ...WaitressWorker`: defaults
        app = self.wsgi
        max_body = app.config["MT_MAX_BODY_BYTES"] if hasattr(app, "config") else 1 << 20
        trusted = list(option(settings, "trusted_proxies", []) or [])
        proxy = {"trusted_proxy": trusted[0], "trusted_proxy_count": 1,
                 "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}} \
            if trusted else {}
        with warnings.catch_warnings():  # send_bytes is deprecated in waitress 3 but has no replacement yet
            warnings.filterwarnings("ignore", "send_bytes", DeprecationWarning)
            server = create_server(
                app, sockets=[listener.sock for listener in self.sockets],
                threads=int(option(settings, "threads", 8)),
                connection_limit=int(option(settings, "connection_limit", 1000)),
                channel_timeout=float(option(settings, "channel_timeout", 30)),
                channel_request_lookahead=1,  # lets the app see a client that hung up mid-request
                max_request_body_size=drain_limit(max_body),
                asyncore_use_poll=True,  # select() stops at 1,024 descriptors
                ident="mt-vi-en", clear_untrusted_proxy_headers=True, send_bytes=1, **proxy,
            )
        smap = getattr(server, "map", None) or server._map
        per_client = int(option(settings, "client_connection_limit", 256))
        for listener in self.listeners(smap):
            listener.handle_accept = capped_accept(listener, smap, per_client, exempt=set(trusted))
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                log.warning("worker %s: the arbiter is gone; stopping", self.pid)
                break
            wasyncore.loop(timeout=0.5, map=smap, use_poll=True, count=1)
        self.drain(server, smap, float(option(settings, "shutdown_timeout", 30.0)))

    @staticmethod
    def listeners(smap: dict) -> list:
        from waitress.server import BaseWSGIServer

        return [obj for obj in list(smap.values()) if isinstance(obj, BaseWSGIServer)]

    def drain(self, server, smap: dict, timeout: float) -> None:
        """Stop accepting, let in-flight requests finish (at most ``timeout`` s), close the rest."""
        from waitress import wasyncore
        from waitress.channel import HTTPChannel

        def channels() -> list:
            return [obj for obj in list(smap.values()) if isinstance(obj, HTTPChannel)]

        def idle(channel) -> bool:
            return not channel.requests and channel.request is None and not channel.total_outbufs_len

        for listener in self.listeners(smap):
            listener.accepting = False
            wasyncore.dispatcher.close(listener)  # this process's copy of the shared socket only
        started = time.monotonic()
        busy = sum(not idle(channel) for channel in channels())
        deadline = started + timeout
        while time.monotonic() < deadline:
            self.notify()
            for channel in channels():
                if idle(channel):
                    channel.handle_close()
            if not channels():
                break
            wasyncore.loop(timeout=0.05, map=smap, use_poll=True, count=1)
        left = channels()
        for channel in left:
            channel.handle_close()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        close = getattr(self.wsgi, "mt_close", None)
        if callable(close):
            close()
        log.info("worker %s stopped: %d request(s) were in flight, %d abandoned, %.2fs", self.pid, busy, len(left),
                 time.monotonic() - started)


def capped_accept(listener, smap: dict, per_client: int, exempt: set[str] = frozenset()):
    """waitress's accept, refusing a client address that already holds ``per_client`` connections
    (closed at once: one client cannot take the whole connection limit). A trusted proxy (``exempt``)
    carries many clients and is not capped. Counting is linear in the open connections, which the
    connection limit bounds."""

    def handle_accept() -> None:
        try:
            accepted = listener.accept()
            if accepted is None:
                return
            conn, addr = accepted
            listener.set_socket_options(conn)
        except OSError:
            return
        client = addr[0] if isinstance(addr, tuple) else addr
        held = 0 if client in exempt else sum(1 for channel in list(smap.values())
                   if isinstance(getattr(channel, "addr", None), tuple) and channel.addr[0] == client
                   and channel is not listener)
        if held >= per_client:
            conn.close()
            return
        listener.channel_class(listener, conn, listener.fix_addr(addr), listener.adj, map=smap)

    return handle_accept


class Server(BaseApplication):
    """gunicorn configured from our settings (no gunicorn command line, no config file)."""

    def __init__(self, settings: Any, app_factory: Callable[[str], Any]):
        self.settings = settings
        self.app_factory = app_factory
        # downloads without a cache wait here, shared by this server's workers (removed at exit)
        self.run_dir = tempfile.mkdtemp(prefix="mt-vi-en-")
        super().__init__()

    def load_config(self) -> None:
        host = option(self.settings, "host", "127.0.0.1")
        port = int(option(self.settings, "port", 5000))
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        config = {
            "bind": [bind],
            "workers": int(option(self.settings, "workers", 1)),
            "worker_class": f"{__name__}.WaitressWorker",
            "graceful_timeout": int(float(option(self.settings, "shutdown_timeout", 30.0))) + 10,  # drain + flush
            "timeout": 600,  # a worker loading a large model must not be taken for hung
            "proc_name": "mt-vi-en",
            "control_socket_disable": True,  # one fixed path per user: two servers would fight over it
            "accesslog": None,  # mt.web.wsgi writes the access log (waitress has none)
            "errorlog": "-",
            "loglevel": "info",
            "when_ready": self.announce,
            "on_exit": self.cleanup,
        }
        for key, value in config.items():
            self.cfg.set(key, value)

    def load(self):
        return self.app_factory(self.run_dir)

    @staticmethod
    def announce(arbiter) -> None:
        for listener in arbiter.LISTENERS:
            host, port = listener.sock.getsockname()[:2]
            host = f"[{host}]" if ":" in str(host) else host
            print(f"mt-vi-en: serving on http://{host}:{port}/", flush=True)
        log.info("%d worker process(es), each with its own copy of the model", arbiter.num_workers)

    def cleanup(self, arbiter) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


def serve(settings: Any, app_factory: Callable[[str], Any]) -> int:
    """Serve until SIGTERM/SIGINT (then drain); ``app_factory(run_dir)`` builds each worker's app."""
    Server(settings, app_factory).run()
    return 0
