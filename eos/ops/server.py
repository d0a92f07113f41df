"""`/metrics` (Prometheus text), `/healthz` and `/readyz` on one port, in a daemon thread.

A probe answers 200 with its reason when its check holds, 503 with the reason when not,
so `curl` shows why a pod is not ready. The server is off the record path: a scrape
costs the scraping thread, and the port failing to bind never stops the process (one
warning says which setting to change).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric

__all__ = ["MetricsServer", "Probe", "serve"]

log = logging.getLogger("eos.ops")


class Probe(Protocol):
    def collect(self) -> Iterator[Metric]: ...
    def live(self) -> tuple[bool, str]: ...
    def ready(self) -> tuple[bool, str]: ...


class MetricsServer:
    def __init__(self, host: str, port: int, probe: Probe) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(probe)
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry)),
            "/healthz": lambda: _answer(probe.live()),
            "/readyz": lambda: _answer(probe.ready()),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                status, kind, body = route() if route else (404, "text/plain", b"not found\n")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # a scrape every few seconds is not worth a log line

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="eos-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _answer(result: tuple[bool, str]) -> tuple[int, str, bytes]:
    ok, why = result
    return (200 if ok else 503), "text/plain; charset=utf-8", (why + "\n").encode()


def serve(host: str, port: int, probe: Probe) -> MetricsServer | None:
    """The server on host:port, or None (with a warning) when the port cannot be bound."""
    try:
        server = MetricsServer(host, port, probe)
    except OSError as exc:
        log.warning(
            "no metrics endpoint: cannot listen on %s:%d (%s); set EOS_METRICS_PORT to a free "
            "port, or 0 for none",
            host,
            port,
            exc.strerror or exc,
        )
        return None
    log.info("metrics on http://%s:%d/metrics (probes /healthz, /readyz)", host, server.port)
    return server
