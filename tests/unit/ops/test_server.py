"""The metrics endpoint serves a probe's metrics and its two checks."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric

from eos.ops.server import MetricsServer, serve


class FakeProbe:
    def __init__(self) -> None:
        self.is_live, self.is_ready = True, False

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("eos_example", "An example", value=7)

    def live(self) -> tuple[bool, str]:
        return self.is_live, "alive" if self.is_live else "stuck"

    def ready(self) -> tuple[bool, str]:
        return self.is_ready, "ready" if self.is_ready else "restoring 2 store partition(s)"


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    resp = conn.getresponse()
    answer = resp.status, resp.read().decode()
    conn.close()
    return answer


@pytest.fixture
def served() -> Iterator[tuple[MetricsServer, FakeProbe]]:
    probe = FakeProbe()
    server = MetricsServer("127.0.0.1", 0, probe)
    yield server, probe
    server.close()


def test_metrics_are_the_probes_in_prometheus_text(
    served: tuple[MetricsServer, FakeProbe],
) -> None:
    server, _ = served
    status, body = _get(server.port, "/metrics")
    assert status == 200
    assert "eos_example 7.0" in body


def test_the_checks_answer_503_with_the_reason_until_they_hold(
    served: tuple[MetricsServer, FakeProbe],
) -> None:
    server, probe = served
    assert _get(server.port, "/healthz") == (200, "alive\n")
    assert _get(server.port, "/readyz") == (503, "restoring 2 store partition(s)\n")
    probe.is_ready = True
    assert _get(server.port, "/readyz") == (200, "ready\n")
    probe.is_live = False
    assert _get(server.port, "/healthz") == (503, "stuck\n")
    assert _get(server.port, "/nothing")[0] == 404


def test_a_taken_port_is_a_warning_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve("127.0.0.1", port, FakeProbe()) is None
    assert "set EOS_METRICS_PORT to a free port, or 0 for none" in caplog.text
