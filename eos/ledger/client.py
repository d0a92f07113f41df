"""Request-reply with the ledger: send a payment, wait for its outcome.

The ledger answers a payment that carries a `reply-to` header with a PaymentOutcome on
that topic, in the transaction that decides it, echoing the `correlation-id` header. The
reply consumer is assigned at the topic's last stable offsets before the payment is
produced, so its answer cannot be missed and older answers are never read.

The payment id is the idempotency key, chosen by the caller: the ledger decides an id
once and answers a retry with the same fields with the original outcome (`replay`), so
after OutcomeUnknown the same request may be sent again safely.
"""

from __future__ import annotations

import getpass
import logging
import re
import socket
import time
import uuid
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from eos.config import EngineSettings, Mode
from eos.errors import ConfigurationError, PermanentError, TransientError
from eos.kafka.admin import create_topics, metadata
from eos.kafka.clients import (
    connection_config,
    consumer_config,
    make_admin,
    make_registry,
    producer_config,
)
from eos.kafka.errors import is_settling, kafka_error
from eos.kafka.offsets import TP, Offsets
from eos.kafka.produce import Encoded, produce
from eos.kafka.retry import settled
from eos.ledger.app import CORRELATION_ID, REPLY_TO
from eos.ledger.currencies import CURRENCIES, currency
from eos.ledger.errors import OutcomeUnknown
from eos.ledger.models import PaymentOutcome, PaymentRequest
from eos.ledger.settings import LedgerSettings
from eos.ledger.setup import choose_replication
from eos.serde.avro import AvroDecoder, AvroEncoder, record_subject
from eos.serde.schemas import contract

__all__ = [
    "SETUP_TIMEOUT_S",
    "OutcomeUnknown",
    "PaymentClient",
    "check_reply_topic",
    "default_reply_topic",
    "is_answer",
    "minor_units",
    "pay",
]

log = logging.getLogger("eos.ledger.client")

CLIENT_ID = "eos-pay"
# Finding topics and schemas, creating the reply topic: apart from a payment's own
# timeout, which a new topic's leader election must not eat into.
SETUP_TIMEOUT_S = 30.0
# Answers are read once, right away: a day is plenty, and the topic stays small.
REPLY_RETENTION_MS = 24 * 3600 * 1000
_AMOUNT = re.compile(r"([0-9]{1,18})(?:\.([0-9]{1,18}))?", re.ASCII)
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}", re.ASCII)


def minor_units(amount: str, code: str) -> int:
    """`amount` in major units ("12.34") as minor units of currency `code` (1234 for
    EUR); ValueError saying what is wrong with either."""
    table = currency(code)
    if table is None:
        raise ValueError(f"currency {code!r} is not one of {', '.join(CURRENCIES)}")
    found = _AMOUNT.fullmatch(amount)
    if found is None:
        raise ValueError(f"amount {amount!r} is not a plain decimal number like 12.34")
    whole, frac = found.group(1), (found.group(2) or "").rstrip("0")
    if len(frac) > table.digits:
        raise ValueError(f"amount {amount} has more decimals than {code} has ({table.digits})")
    scale: int = 10**table.digits
    minor = int(whole) * scale + int(frac.ljust(table.digits, "0") or "0")
    if minor <= 0:
        raise ValueError(f"amount {amount} is not positive")
    if minor > table.max_minor:
        raise ValueError(
            f"amount {table.units(minor)} is above the largest payment, "
            f"{table.units(table.max_minor)}"
        )
    return minor


def default_reply_topic(ledger: LedgerSettings) -> str:
    """`<reply prefix>pay.<user>.<host>`: one reply topic per user and host, reused by
    every call (answers are told apart by correlation id)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container's bare uid)
        user = "anonymous"
    name = f"{ledger.reply_topic_prefix}pay.{user}.{socket.gethostname()}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:249]


def check_reply_topic(engine: EngineSettings, ledger: LedgerSettings, topic: str) -> None:
    """ConfigurationError for a reply topic the ledger would refuse to answer on (it
    would reject the payment INVALID_REPLY_TO and send no answer at all)."""
    prefix = ledger.reply_topic_prefix
    if not topic.startswith(prefix):
        raise ConfigurationError(
            f"reply topic {topic!r} does not start with {prefix!r}, so the ledger would not "
            "answer on it; choose one that does (EOS_LEDGER_REPLY_TOPIC_PREFIX sets it)"
        )
    if not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise ConfigurationError(
            f"reply topic {topic!r} is not a valid topic name (letters, digits, '.', '_', '-')"
        )
    if topic in ledger.no_reply_topics(engine.dlq_topic):
        raise ConfigurationError(f"reply topic {topic!r} is one of the ledger's own topics")


def is_answer(correlation_id: str, header: bytes | None, outcome: PaymentOutcome) -> bool:
    """Whether `outcome` (with its correlation-id header) answers the request sent with
    `correlation_id`: the header or the outcome's own field names it."""
    return (header is not None and header == correlation_id.encode()) or (
        outcome.correlation_id == correlation_id
    )


class PaymentClient:
    """Sends payments to the ledger and waits for their outcomes, over one idempotent
    producer and one read_committed consumer of the reply topic.

    Opening it checks that the payments topic exists, creates the reply topic when it is
    missing (through eos.kafka.admin, so a settling cluster is asked again) and finds the
    schemas' ids, each step bounded by `timeout` seconds; a failure there (an EosError,
    KafkaException or TimeoutError) comes before anything is sent. Not thread-safe: one
    payment at a time. Close it, or use it as a context manager.
    """

    def __init__(
        self,
        engine: EngineSettings,
        ledger: LedgerSettings,
        *,
        reply_topic: str,
        timeout: float = SETUP_TIMEOUT_S,
    ) -> None:
        check_reply_topic(engine, ledger, reply_topic)
        self.reply_topic = reply_topic
        self.payments_topic = ledger.payments_topic
        config = producer_config(engine.model_copy(update={"mode": Mode.AT_LEAST_ONCE}))
        # One record, sent at once: nothing to batch.
        config.update({"linger.ms": 0, "client.id": CLIENT_ID})
        # Made first: an idempotent producer needs its producer id before it sends, and a
        # record produced before that has arrived waits up to a second longer.
        self._producer = Producer(config, logger=log)
        with Offsets(consumer_config(engine), timeout) as offsets:
            ends = _reply_ends(offsets, engine, ledger, reply_topic, timeout)
        registry = make_registry(engine)
        request_contract = contract("ledger/payment_request", PaymentRequest)
        self._encoder = AvroEncoder(registry, ledger.payments_topic, request_contract)
        self._encoder.prepare()  # a schema not registered fails here, before any send
        outcome_contract = contract("ledger/payment_outcome", PaymentOutcome)
        self._decoder = AvroDecoder(
            registry, outcome_contract, subject=record_subject(outcome_contract)
        )
        self._consumer = _consumer_at(engine, ends)

    def pay(self, request: PaymentRequest, *, timeout: float) -> PaymentOutcome:
        """Send `request` and return its outcome; OutcomeUnknown when none arrives
        within `timeout` seconds (the request may still be decided: sending the same
        request again, with the same payment id, is safe)."""
        deadline = time.monotonic() + timeout
        correlation = str(uuid.uuid4())
        value = self._encoder.encode(request)
        headers = [(REPLY_TO, self.reply_topic.encode()), (CORRELATION_ID, correlation.encode())]
        failures: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        record = Encoded(self.payments_topic, request.debit_account.encode(), value, headers)
        produce(self._producer, record, on_delivery, wait_s=timeout)
        unsent = self._producer.flush(max(deadline - time.monotonic(), 0.0))
        pid = request.payment_id
        if failures:
            raise OutcomeUnknown(
                pid, f"payment {pid} was not confirmed delivered ({failures[0].str()})"
            )
        if unsent:
            raise OutcomeUnknown(pid, f"payment {pid} was not confirmed delivered in {timeout:g}s")
        return self._await(pid, correlation, deadline, timeout)

    def _await(
        self, payment_id: str, correlation: str, deadline: float, timeout: float
    ) -> PaymentOutcome:
        while (left := deadline - time.monotonic()) > 0:
            msg = self._consumer.poll(min(left, 0.5))
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if is_settling(err):  # a broker bouncing: the consumer fetches again
                    continue
                raise OutcomeUnknown(
                    payment_id,
                    f"payment {payment_id} was sent, but reading {self.reply_topic} "
                    f"failed ({err.str()})",
                )
            outcome = self._decode(msg, payment_id, correlation)
            if outcome is not None and is_answer(correlation, _header(msg), outcome):
                return outcome
        raise OutcomeUnknown(payment_id, f"no outcome for payment {payment_id} within {timeout:g}s")

    def _decode(self, msg: Message, payment_id: str, correlation: str) -> PaymentOutcome | None:
        """The outcome in `msg`; None for a record that is not one and not ours (other
        writers may share a reply topic)."""
        try:
            outcome: PaymentOutcome = self._decoder.decode(msg.value())
        except (PermanentError, TransientError) as exc:
            if _header(msg) != correlation.encode():
                log.debug("skipped an undecodable record on %s: %s", self.reply_topic, exc)
                return None
            raise OutcomeUnknown(
                payment_id, f"the answer to payment {payment_id} could not be decoded ({exc})"
            ) from exc
        return outcome

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> PaymentClient:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


def pay(
    engine: EngineSettings,
    ledger: LedgerSettings,
    request: PaymentRequest,
    *,
    reply_topic: str,
    timeout: float,
    setup_timeout: float = SETUP_TIMEOUT_S,
) -> PaymentOutcome:
    """Send one payment and return its outcome within `timeout` seconds (see
    PaymentClient); reaching the cluster and the registry first is bounded apart, by
    `setup_timeout`."""
    with PaymentClient(engine, ledger, reply_topic=reply_topic, timeout=setup_timeout) as c:
        return c.pay(request, timeout=timeout)


def _header(msg: Message) -> bytes | None:
    consumed: Any = msg.headers() or []  # a list of (str, bytes | None) when consumed
    for name, value in consumed:
        if name == CORRELATION_ID:
            return value if isinstance(value, bytes) else None
    return None


def _reply_ends(
    offsets: Offsets, engine: EngineSettings, ledger: LedgerSettings, topic: str, timeout: float
) -> dict[TP, int]:
    """Where each partition of the reply topic ends for a read_committed reader, the
    topic created (one partition) when it is missing; ConfigurationError when the
    ledger's payments topic is missing."""
    deadline = time.monotonic() + timeout
    # Metadata first, on the same client as the offsets: a fresh client whose first
    # request is ListOffsets sometimes waits 1-3 s for a metadata retry (librdkafka
    # replaces the bootstrap broker under the request in flight).
    if not _partitions(offsets, ledger.payments_topic, deadline):
        raise ConfigurationError(
            f"topic {ledger.payments_topic} does not exist; run `eos ledger setup`"
        )
    partitions = _partitions(offsets, topic, deadline)
    if not partitions:
        _create(make_admin(engine), topic, deadline)
    while not partitions:
        if time.monotonic() > deadline:
            raise ConfigurationError(f"reply topic {topic} had no leader within {timeout:g}s")
        time.sleep(0.1)  # created: until the metadata shows its leader
        partitions = _partitions(offsets, topic, deadline)
    return offsets.last_stable(partitions)


def _partitions(offsets: Offsets, topic: str, deadline: float) -> list[TP]:
    """The topic's partitions; none when it does not exist (or has no leader yet)."""
    try:
        return settled(lambda: offsets.partitions([topic]), deadline - time.monotonic())
    except KeyError:
        return []


def _consumer_at(engine: EngineSettings, ends: dict[TP, int]) -> Consumer:
    """A consumer of the reply topic from `ends`, in no group: an explicit offset, not
    OFFSET_END, which would resolve only once fetching starts, possibly after the
    answer."""
    consumer = Consumer(
        {
            **connection_config(consumer_config(engine)),
            "client.id": CLIENT_ID,
            # Required by the client, never joined: no offsets are committed.
            "group.id": f"{CLIENT_ID}-{uuid.uuid4().hex[:12]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # An answer becomes readable when its transaction commits; a short fetch
            # wait bounds how long the broker sits on it.
            "fetch.wait.max.ms": 50,
        },
        logger=log,
    )
    consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in ends.items()])
    return consumer


def _create(admin: AdminClient, topic: str, deadline: float) -> None:
    brokers = len(metadata(admin, max(deadline - time.monotonic(), 1.0)).brokers)
    replication = choose_replication(brokers)
    config = {
        "min.insync.replicas": str(replication.min_insync),
        "retention.ms": str(REPLY_RETENTION_MS),
    }
    spec = NewTopic(topic, 1, replication.factor, config=config)
    try:
        create_topics(admin, [spec], max(deadline - time.monotonic(), 1.0))
    except KafkaException as exc:
        if kafka_error(exc).code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        # Another caller created it meanwhile: as good.
    log.info("created reply topic %s", topic)
