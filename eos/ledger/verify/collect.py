"""Reading the ledger's topics into a Snapshot, decoding each record as it arrives.

Values are decoded through the serde layer's wire format (eos.serde.wire); a record that
does not decode is kept as a "REASON: detail" message, never dropped silently.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import fastavro
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.engine import dlq as h
from eos.kafka.admin import metadata
from eos.kafka.clients import connection_config
from eos.kafka.reader import Handler, ProgressCallback, read_topics
from eos.ledger.app import CORRELATION_ID, REPLY_TO
from eos.ledger.rules import canonical_payment_id
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify.rows import (
    DeadLetter,
    Entry,
    Leg,
    Payment,
    Position,
    Rejection,
    Reply,
    Snapshot,
    place,
)
from eos.serde.avro import read_payload
from eos.serde.registry import schema_str
from eos.serde.wire import DecodeError, WriterSchemas, split

__all__ = ["Collector", "RecordDecoder", "reply_topics", "snapshot"]

_ASKING = (REPLY_TO, CORRELATION_ID)

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

    def __init__(
        self,
        registry: SchemaRegistryClient,
        ledger: LedgerSettings,
        dlq: str,
        reply_topics: Iterable[str] = (),
    ):
        self.s = ledger
        self.dlq = dlq
        self.decode = RecordDecoder(registry).decode
        # Per partition, so that each topic ends up in (partition, offset) order.
        self.payments: dict[int, list[Payment]] = defaultdict(list)
        self.entries: dict[int, list[Entry]] = defaultdict(list)
        self.rejections: dict[int, list[Rejection]] = defaultdict(list)
        self.legs: dict[int, list[Leg]] = defaultdict(list)
        self.snap = Snapshot(dlq_topic=dlq, reply_topics=set(reply_topics), dedup={})

    def handlers(self) -> dict[str, Handler]:
        s = self.s
        return {
            s.payments_topic: self.payment,
            s.entries_topic: self.entry,
            s.rejected_topic: self.rejection,
            s.credits_topic: self.leg,
            self.dlq: self.dead_letter,
            s.balances_changelog: self.balance,
            s.dedup_changelog: self.remembered,
            **{topic: self.reply for topic in self.snap.reply_topics},
        }

    def payment(self, msg: Message) -> None:
        self.snap.inputs += 1
        try:
            v = self.decode(msg.value())
            pay = Payment(
                msg.partition() or 0,
                msg.offset() or 0,
                v["payment_id"],
                v["debit_account"],
                v["credit_account"],
                v["amount_minor"],
                v["currency"],
                v.get("reference"),
            )
        except (DecodeError, KeyError) as exc:
            self.snap.undecodable_payments[_at(msg)] = _why(exc)
            return
        pay = _canonical(pay)
        headers: Any = msg.headers()  # a list of (str, bytes | None) when consumed
        if headers:  # only requests that ask for an answer carry these
            found = {k: v for k, v in headers if k in _ASKING and isinstance(v, bytes)}
            if found:
                pay = pay._replace(
                    reply_to=_text(found.get(_ASKING[0])),
                    correlation_id=_text(found.get(_ASKING[1])),
                )
        self.payments[pay.partition].append(pay)

    def reply(self, msg: Message) -> None:
        where = place(msg.topic() or "?", *_at(msg))
        try:
            v = self.decode(msg.value())
            pid = v["payment_id"]
            row = Reply(
                *_at(msg),
                msg.topic() or "?",
                canonical_payment_id(pid) or pid,
                v.get("correlation_id"),
                v["status"],
                v.get("reason"),
                v.get("debit_balance_after_minor"),
                bool(v.get("replay", False)),
            )
        except (DecodeError, KeyError) as exc:
            self.snap.undecodable_outputs.append(f"{where}: {_why(exc)}")
            return
        self.snap.replies.append(row)

    def remembered(self, msg: Message) -> None:
        """A record of the dedup changelog: what the ledger remembers of an id."""
        key = (msg.key() or b"").decode("utf-8", "replace")
        dedup = self.snap.dedup
        assert dedup is not None
        value = msg.value()
        if value is None:
            dedup.pop(key, None)
            self.snap.dedup_purged.add(key)
            return
        try:
            state = json.loads(value)
            dedup[key] = (
                (str(state["f"]), state.get("s"), state.get("r"))
                if isinstance(state, dict)
                else None
            )
        except (ValueError, KeyError, TypeError) as exc:
            where = place(self.s.dedup_changelog, *_at(msg))
            self.snap.undecodable_outputs.append(
                f"{where} key {key}: not a dedup record ({type(exc).__name__}: {exc})"
            )

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
        if self.s.dedup_changelog in missing:
            snap.dedup = None
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


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def reply_topics(config: Mapping[str, Any], ledger: LedgerSettings, dlq: str) -> list[str]:
    """The topics replies may have gone to: named with the reply prefix, none of the
    ledger's own."""
    names = metadata(AdminClient(connection_config(config))).topics
    never = ledger.no_reply_topics(dlq)
    return sorted(t for t in names if t.startswith(ledger.reply_topic_prefix) and t not in never)


def _in_order(parts: dict[int, list[_T]]) -> list[_T]:
    return [item for p in sorted(parts) for item in parts[p]]


def snapshot(
    config: Mapping[str, Any],
    registry: SchemaRegistryClient,
    ledger: LedgerSettings,
    dlq_topic: str,
    timeout: float = 120.0,
    progress: ProgressCallback | None = None,
) -> Snapshot:
    """Read and decode every committed record of the ledger's topics; `progress` is told
    how the read goes."""
    collector = Collector(registry, ledger, dlq_topic, reply_topics(config, ledger, dlq_topic))
    missing = read_topics(config, collector.handlers(), timeout, progress=progress)
    return collector.finish(missing)
