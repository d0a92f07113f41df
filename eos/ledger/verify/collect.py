"""Reading the ledger's topics into a Snapshot, decoding each record as it arrives.

Values are decoded through the serde layer's wire format (eos.serde.wire); a record that
does not decode is kept as a "REASON: detail" message, never dropped silently.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, TypeVar

import fastavro
from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.engine import dlq as h
from eos.kafka.reader import Handler, read_topics
from eos.ledger.rules import canonical_payment_id
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify.rows import (
    DeadLetter,
    Entry,
    Leg,
    Payment,
    Position,
    Rejection,
    Snapshot,
    place,
)
from eos.serde.avro import read_payload
from eos.serde.registry import schema_str
from eos.serde.wire import DecodeError, WriterSchemas, split

__all__ = ["Collector", "RecordDecoder", "snapshot"]

_T = TypeVar("_T")
_Row = TypeVar("_Row", Payment, Entry, Rejection, Leg)


class RecordDecoder:
    """Avro records in the Confluent wire format, read with the writer schema of their id.

    Raises DecodeError (NOT_WIRE_FORMAT, UNKNOWN_SCHEMA, MALFORMED_AVRO, NOT_A_RECORD).
    """

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._schemas: WriterSchemas[Any] = WriterSchemas(self._fetch)

    def decode(self, data: bytes | None) -> dict[str, Any]:
        schema_id, payload = split(data)
        schema = self._schemas.get(schema_id)
        value = read_payload(payload, schema)
        if not isinstance(value, dict):
            raise DecodeError("NOT_A_RECORD", "the schema is not a record")
        return value

    def _fetch(self, schema_id: int) -> Any:
        # Timestamps stay epoch millis: cheaper to read, and nothing here needs datetimes.
        text = schema_str(self._registry, schema_id)
        return fastavro.parse_schema(_without_logical_types(json.loads(text)))


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(v) for v in schema]
    return schema


def _why(exc: Exception) -> str:
    """A failed decode as "REASON: detail"."""
    if isinstance(exc, KeyError):
        return f"MISSING_FIELD: {exc}"
    return str(exc)


def _at(msg: Message) -> Position:
    return (msg.partition() or 0, msg.offset() or 0)


class Collector:
    """Decodes records as they arrive (while librdkafka fetches more) into a Snapshot."""

    def __init__(self, registry: SchemaRegistryClient, ledger: LedgerSettings, dlq: str):
        self.s = ledger
        self.dlq = dlq
        self.decode = RecordDecoder(registry).decode
        # Per partition, so that each topic ends up in (partition, offset) order.
        self.payments: dict[int, list[Payment]] = defaultdict(list)
        self.entries: dict[int, list[Entry]] = defaultdict(list)
        self.rejections: dict[int, list[Rejection]] = defaultdict(list)
        self.legs: dict[int, list[Leg]] = defaultdict(list)
        self.snap = Snapshot(dlq_topic=dlq)

    def handlers(self) -> dict[str, Handler]:
        s = self.s
        return {
            s.payments_topic: self.payment,
            s.entries_topic: self.entry,
            s.rejected_topic: self.rejection,
            s.credits_topic: self.leg,
            self.dlq: self.dead_letter,
            s.balances_changelog: self.balance,
        }

    def payment(self, msg: Message) -> None:
        self.snap.inputs += 1
        try:
            pay = _canonical(self._row(Payment, msg))
        except (DecodeError, KeyError) as exc:
            self.snap.undecodable_payments[_at(msg)] = _why(exc)
            return
        self.payments[pay.partition].append(pay)

    def entry(self, msg: Message) -> None:
        self._collect(Entry, msg, self.s.entries_topic, self.entries)

    def rejection(self, msg: Message) -> None:
        self._collect(Rejection, msg, self.s.rejected_topic, self.rejections)

    def leg(self, msg: Message) -> None:
        self._collect(Leg, msg, self.s.credits_topic, self.legs)

    def _row(self, kind: type[_Row], msg: Message) -> _Row:
        """The record as `kind`: its partition and offset, then the value's fields of the
        same names."""
        v = self.decode(msg.value())
        # Inline, not _at(msg): this runs for every record.
        return kind(msg.partition() or 0, msg.offset() or 0, *(v[f] for f in kind._fields[2:]))

    def _collect(
        self, kind: type[_Row], msg: Message, topic: str, into: dict[int, list[_Row]]
    ) -> None:
        try:
            row = _canonical(self._row(kind, msg))
        except (DecodeError, KeyError) as exc:
            self.snap.undecodable_outputs.append(f"{place(topic, *_at(msg))}: {_why(exc)}")
            return
        into[row.partition].append(row)

    def dead_letter(self, msg: Message) -> None:
        consumed: Any = msg.headers() or []  # a list of (str, bytes | None) when consumed
        headers = [(k, v) for k, v in consumed if isinstance(v, bytes)]
        source_topic = h.header(headers, h.H_TOPIC)
        if source_topic not in (self.s.payments_topic, self.s.credits_topic):
            return  # another application's dead letter
        source: Position | None = None
        with contextlib.suppress(ValueError):
            source = (
                int(h.header(headers, h.H_PARTITION) or ""),
                int(h.header(headers, h.H_OFFSET) or ""),
            )
        try:
            payment_id: str | None = self.decode(msg.value())["payment_id"]
        except (DecodeError, KeyError):
            payment_id = None
        if payment_id is not None:
            payment_id = canonical_payment_id(payment_id) or payment_id
        reason = h.header(headers, h.H_ERROR_REASON) or "?"
        self.snap.dead_letters.append(
            DeadLetter(*_at(msg), source_topic, source, payment_id, reason)
        )

    def balance(self, msg: Message) -> None:
        name = (msg.key() or b"").decode("utf-8", "replace")
        value = msg.value()
        if value is None:
            self.snap.balances.pop(name, None)
            return
        try:
            state = json.loads(value)
            self.snap.balances[name] = (int(state["b"]), int(state["n"]))
        except (ValueError, KeyError, TypeError) as exc:
            where = place(self.s.balances_changelog, *_at(msg))
            self.snap.undecodable_outputs.append(
                f"{where} key {name}: not a JSON balance {{b, n}} ({type(exc).__name__}: {exc})"
            )

    def finish(self, missing: list[str]) -> Snapshot:
        snap = self.snap
        snap.notes = [f"topic {t} does not exist (read as empty)" for t in missing]
        snap.payments = _in_order(self.payments)
        snap.entries = _in_order(self.entries)
        snap.rejections = _in_order(self.rejections)
        snap.legs = _in_order(self.legs)
        return snap


def _canonical(row: _Row) -> _Row:
    """`row` with its payment id in canonical form: two spellings of one UUID are one
    payment to every check (an id that is no UUID stays as spelt)."""
    canonical = canonical_payment_id(row.payment_id)
    if canonical is None or canonical == row.payment_id:
        return row
    return row._replace(payment_id=canonical)


def _in_order(parts: dict[int, list[_T]]) -> list[_T]:
    return [item for p in sorted(parts) for item in parts[p]]


def snapshot(
    config: Mapping[str, Any],
    registry: SchemaRegistryClient,
    ledger: LedgerSettings,
    dlq_topic: str,
    timeout: float = 120.0,
) -> Snapshot:
    """Read and decode every committed record of the ledger's topics."""
    collector = Collector(registry, ledger, dlq_topic)
    missing = read_topics(config, collector.handlers(), timeout)
    return collector.finish(missing)
