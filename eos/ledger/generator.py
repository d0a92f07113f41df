"""`eos produce payments`: realistic load for the ledger.

Internal accounts are first funded from external accounts (the outside world), then pay
each other in several currencies. Configurable shares of the records are duplicates (a
payment sent again, byte for byte), invalid payments (each is rejected with a reason)
and undecodable bytes (they go to the DLQ).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Message, Producer

from eos.config import EngineSettings
from eos.kafka.clients import make_registry, producer_config
from eos.kafka.produce import Encoded, produce
from eos.ledger.app import CORRELATION_ID, REPLY_TO
from eos.ledger.currencies import CURRENCIES
from eos.ledger.errors import UndeliveredRecords
from eos.ledger.models import PaymentRequest
from eos.ledger.settings import LedgerSettings
from eos.progress import Progress
from eos.serde.avro import AvroEncoder
from eos.serde.schemas import contract

FUNDING_UNITS = 50_000  # each account's funding per currency, in major units
EXTERNAL = ("ext:bank-a", "ext:bank-b", "ext:card-network")


@dataclass
class LoadSpec:
    count: int
    accounts: int = 200
    currencies: tuple[str, ...] = ("EUR", "USD", "GBP")
    duplicates: float = 0.02
    invalid: float = 0.03
    garbage: float = 0.001
    reply_to: str | None = None
    reply_share: float = 0.0
    rate: float = 0.0  # records/s; 0 = as fast as possible
    seed: int | None = None
    # "inline": fund every account first, then pay; "only": just the funding payments
    # (count is ignored); "skip": no funding (accounts were funded by an earlier run).
    funding: str = "inline"


@dataclass
class LoadReport:
    kinds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    delivered: int = 0
    interrupted: bool = False  # Ctrl-C: what was queued was flushed, the rest not sent
    undelivered: int = 0

    def interrupted_line(self, count: int) -> str:
        produced = sum(self.kinds.values())
        return (
            f"interrupted: {self.delivered:,} of {count:,} records delivered, "
            f"{count - produced:,} never sent, {self.undelivered:,} queued but not delivered"
        )

    def line(self) -> str:
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.kinds.items()))
        total = sum(self.kinds.values())
        return f"produced {total:,} records in {self.seconds:.1f}s ({parts})"


def _digits(code: str) -> int:
    row = CURRENCIES.get(code)
    return row.digits if row else 2


def _minor(units: int, code: str) -> int:
    return units * int(10 ** _digits(code))


class PaymentFactory:
    def __init__(self, spec: LoadSpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.internal = [f"acct-{i:05d}" for i in range(spec.accounts)]

    def funding(self) -> list[PaymentRequest]:
        return [
            self._request(self.rng.choice(EXTERNAL), acct, _minor(FUNDING_UNITS, cur), cur)
            for acct in self.internal
            for cur in self.spec.currencies
        ]

    def ordinary(self) -> PaymentRequest:
        roll = self.rng.random()
        debit = self.rng.choice(self.internal)
        credit = self.rng.choice(self.internal)
        while credit == debit:
            credit = self.rng.choice(self.internal)
        if roll < 0.02:
            debit = self.rng.choice(EXTERNAL)  # a deposit from outside
        elif roll < 0.04:
            credit = self.rng.choice(EXTERNAL)  # a withdrawal
        cur = self.rng.choice(self.spec.currencies)
        # Mostly tens of units, in the currency's own minor units (cents, yen, fils).
        amount = int(self.rng.lognormvariate(3.4, 1.2) * 10 ** _digits(cur)) + 1
        return self._request(debit, credit, amount, cur)

    def invalid(self) -> PaymentRequest:
        req = self.ordinary()
        kind = self.rng.randrange(6)
        if kind == 0:
            return req.model_copy(update={"amount_minor": -self.rng.randrange(0, 1000)})
        if kind == 1:
            over = CURRENCIES[req.currency].max_minor + 1 if req.currency in CURRENCIES else 10**12
            return req.model_copy(update={"amount_minor": over})
        if kind == 2:
            return req.model_copy(update={"currency": "XXQ"})
        if kind == 3:
            return req.model_copy(update={"credit_account": req.debit_account})
        if kind == 4:
            return req.model_copy(update={"payment_id": f"not-a-uuid-{self.rng.random()}"})
        return req.model_copy(update={"credit_account": "bad account!"})

    def _request(self, debit: str, credit: str, amount: int, currency: str) -> PaymentRequest:
        return PaymentRequest(
            payment_id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            debit_account=debit,
            credit_account=credit,
            amount_minor=amount,
            currency=currency,
            requested_at=datetime.now(UTC),
            reference=f"invoice {self.rng.randrange(10**6):06d}",
        )


def produce_payments(engine: EngineSettings, ledger: LedgerSettings, spec: LoadSpec) -> LoadReport:
    rng = random.Random(spec.seed)
    factory = PaymentFactory(spec, rng)
    encoder = AvroEncoder(
        make_registry(engine),
        ledger.payments_topic,
        contract("ledger/payment_request", PaymentRequest),
    )
    config = producer_config(engine.model_copy(update={"mode": "at_least_once"}))
    config.update({"linger.ms": 20, "client.id": "eos-load-generator"})
    producer = Producer(config)
    errors: list[KafkaError] = []

    report = LoadReport()

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            report.delivered += 1

    progress = Progress("produce payments", spec.count)
    sent: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
    funding = factory.funding()
    if spec.funding == "only":
        spec = replace(spec, count=len(funding))
    elif spec.funding == "skip":
        funding = []
    else:
        funding = funding[: spec.count // 5]
    started = time.monotonic()
    try:
        for i in range(spec.count):
            if spec.rate:
                delay = started + i / spec.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            kind, key, value, headers = _next(i, funding, factory, encoder, spec, rng, sent)
            produce(producer, Encoded(ledger.payments_topic, key, value, headers), on_delivery)
            report.kinds[kind] += 1
            if i % 1000 == 0:
                producer.poll(0)
                progress.update(i)
                if errors:
                    break
    except KeyboardInterrupt:
        # What is queued is delivered (a second Ctrl-C gives that up too), then reported.
        progress.close()
        report.interrupted = True
        try:
            report.undelivered = producer.flush(30)
        except KeyboardInterrupt:
            report.undelivered = len(producer)
        report.seconds = time.monotonic() - started
        return report
    remaining = producer.flush(120)
    if errors or remaining:
        progress.close()
        raise UndeliveredRecords(
            f"{len(errors)} delivery errors "
            f"({errors[0].str() if errors else ''}), {remaining} undelivered"
        )
    progress.done(spec.count)
    report.seconds = time.monotonic() - started
    return report


def _next(
    i: int,
    funding: list[PaymentRequest],
    factory: PaymentFactory,
    encoder: AvroEncoder,
    spec: LoadSpec,
    rng: random.Random,
    sent: list[tuple[bytes, bytes, list[tuple[str, bytes]]]],
) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    if i < len(funding):
        req, kind = funding[i], "funding"
    else:
        roll = rng.random()
        if roll < spec.garbage:
            account = rng.choice(factory.internal)
            garbage = b"\xff" + rng.randbytes(rng.randrange(0, 40))  # never a valid header
            return "undecodable", account.encode(), garbage, []
        if roll < spec.garbage + spec.duplicates and sent:
            return ("duplicate", *rng.choice(sent[-5000:]))
        if roll < spec.garbage + spec.duplicates + spec.invalid:
            req, kind = factory.invalid(), "invalid"
        else:
            req, kind = factory.ordinary(), "payment"
    headers: list[tuple[str, bytes]] = []
    if spec.reply_to and rng.random() < spec.reply_share:
        headers = [(REPLY_TO, spec.reply_to.encode()), (CORRELATION_ID, f"corr-{i}".encode())]
    key = req.debit_account.encode()
    value = encoder.encode(req)
    sent.append((key, value, headers))
    if len(sent) > 20_000:
        del sent[:10_000]
    return kind, key, value, headers
