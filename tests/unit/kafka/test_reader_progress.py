"""The reader's progress reports (rate, ETA, share done), the line that prints them,
the connection a reader takes from the processor's settings, and refusals remembered
among the errors that follow them. No broker needed."""

from __future__ import annotations

import io

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr

from eos.cli.progress import LOG_EVERY, ReadProgressLine, describe, finished
from eos.config import EngineSettings, SecuritySettings
from eos.kafka.reader import ReadProgress, Refused, _Errors, reader_config


def test_rate_is_records_over_seconds_and_eta_the_remaining_offsets_at_that_rate() -> None:
    p = ReadProgress(records=600_000, remaining=1_200_000, seconds=4.0)
    assert p.rate == 150_000
    assert p.eta == 8.0
    assert p.fraction == pytest.approx(1 / 3)


def test_eta_is_unknown_before_any_record_and_zero_when_nothing_remains() -> None:
    waiting = ReadProgress(records=0, remaining=500, seconds=2.0)
    assert waiting.rate == 0
    assert waiting.eta is None
    assert waiting.fraction == 0
    done = ReadProgress(records=500, remaining=0, seconds=2.0, done=True)
    assert done.eta == 0
    assert done.fraction == 1
    assert ReadProgress(records=0, remaining=0, seconds=0.0).rate == 0
    assert ReadProgress(records=0, remaining=0, seconds=0.0).fraction == 1


def test_the_line_shows_count_rate_eta_and_share() -> None:
    p = ReadProgress(records=1_234_567, remaining=2_469_134, seconds=10.0)
    assert describe(p) == "reading: 1,234,567 records, 123,457/s, ETA 20s (33%)"
    assert describe(ReadProgress(0, 10, 2.0)) == "reading: 0 records, 0/s, ETA ? (0%)"
    assert finished(ReadProgress(3_000_000, 0, 12.5, done=True)) == (
        "read 3,000,000 records in 12.5s (240,000/s)"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_is_drawn_then_taken_down_for_the_summary_line() -> None:
    out = _Terminal()
    line = ReadProgressLine(out)
    line(ReadProgress(100, 300, 2.0))
    line(ReadProgress(200, 200, 4.0))
    line(ReadProgress(400, 0, 6.0, done=True))
    shown = out.getvalue()
    assert "reading" in shown and "200/400" in shown and "ETA" in shown
    assert shown.endswith(finished(ReadProgress(400, 0, 6.0, done=True)) + "\n")


def test_without_a_terminal_a_line_every_few_seconds_only() -> None:
    out = io.StringIO()
    line = ReadProgressLine(out)
    for second in range(2, 25, 2):
        line(ReadProgress(second * 100, 10_000, float(second)))
    line(ReadProgress(2_600, 0, 26.0, done=True))
    lines = out.getvalue().splitlines()
    assert LOG_EVERY == 10.0
    assert [ln.split(" records")[0] for ln in lines] == [
        "reading: 200",
        "reading: 1,200",
        "reading: 2,200",
        "read 2,600",
    ]
    assert "\r" not in out.getvalue()


def test_a_quick_read_prints_nothing() -> None:
    out = io.StringIO()
    ReadProgressLine(out)(ReadProgress(50, 0, 0.3, done=True))
    assert out.getvalue() == ""


def test_a_reader_connects_as_the_processor_but_as_no_member_of_its_group() -> None:
    settings = EngineSettings(
        bootstrap_servers="broker:9093",
        group_id="ledger",
        security=SecuritySettings(
            security_protocol="SASL_SSL",
            sasl_mechanism="PLAIN",
            sasl_username="svc",
            sasl_password=SecretStr("pw"),
            ssl_ca_location="/ca.pem",
        ),
        client_overrides={"ssl.endpoint.identification.algorithm": "none", "linger.ms": "5"},
    )
    assert reader_config(settings) == {
        "bootstrap.servers": "broker:9093",
        "client.id": "eos-reader",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "svc",
        "sasl.password": "pw",
        "ssl.ca.location": "/ca.pem",
        "ssl.endpoint.identification.algorithm": "none",
    }
    named = settings.model_copy(update={"client_overrides": {"client.id": "audit"}})
    assert reader_config(named)["client.id"] == "audit"


def test_a_refusal_is_remembered_among_the_errors_that_follow_it() -> None:
    errors = _Errors()
    errors(KafkaError(KafkaError._TRANSPORT, "Connection refused"))
    errors.check()  # a transport error is asked again, not raised
    assert errors.context() == " (last client error: Connection refused)"
    errors(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: Invalid password"))
    errors(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    with pytest.raises(Refused, match="refused the client: SASL authentication error"):
        errors.check()
