from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from eos.kafka.partitioner import murmur2, partition_for
from eos.ledger.currencies import CURRENCIES
from eos.ledger.models import PaymentRequest, RejectionReason
from eos.ledger.rules import canonical_payment_id, validate
from eos.ledger.settings import LedgerSettings


def _req(**kw: object) -> PaymentRequest:
    base: dict[str, object] = {
        "payment_id": str(uuid.uuid4()),
        "debit_account": "acct-1",
        "credit_account": "acct-2",
        "amount_minor": 100,
        "currency": "EUR",
        "requested_at": datetime.now(UTC),
    }
    base.update(kw)
    return PaymentRequest.model_validate(base)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"payment_id": "nope"}, RejectionReason.INVALID_ID),
        ({"debit_account": "has space"}, RejectionReason.INVALID_ACCOUNT),
        ({"credit_account": ""}, RejectionReason.INVALID_ACCOUNT),
        ({"credit_account": "acct-1"}, RejectionReason.SAME_ACCOUNT),
        ({"amount_minor": 0}, RejectionReason.INVALID_AMOUNT),
        ({"amount_minor": -5}, RejectionReason.INVALID_AMOUNT),
        ({"amount_minor": 10**12}, RejectionReason.AMOUNT_TOO_LARGE),
        ({"currency": "XYZ"}, RejectionReason.UNKNOWN_CURRENCY),
    ],
)
def test_each_rule_names_its_reason(change: dict[str, object], reason: RejectionReason) -> None:
    result = validate(_req(**change), LedgerSettings())
    assert result is not None
    assert result[0] is reason


def test_a_well_formed_payment_passes() -> None:
    assert validate(_req(), LedgerSettings()) is None
    assert validate(_req(debit_account="ext:bank-a"), LedgerSettings()) is None


def test_murmur2_matches_kafkas_reference_values() -> None:
    # Values from Kafka's UtilsTest.testMurmur2.
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107
    assert 0 <= partition_for(b"acct-1", 6) < 6


def test_a_payment_id_in_any_case_is_carried_in_its_canonical_lower_case_form() -> None:
    raw = str(uuid.uuid4())
    assert canonical_payment_id(raw.upper()) == raw
    assert canonical_payment_id(raw) == raw
    assert canonical_payment_id(raw.upper()[:9] + raw[9:]) == raw


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        "",
        "{12345678-1234-5678-1234-567812345678}",  # uuid.UUID accepts these spellings
        "urn:uuid:12345678-1234-5678-1234-567812345678",
        "12345678123456781234567812345678",
        "12345678-1234-5678-1234-567812345678\n",
        " 12345678-1234-5678-1234-567812345678",
        "\uff112345678-1234-5678-1234-567812345678",  # a full-width digit
    ],
)
def test_only_the_hyphenated_uuid_form_is_a_payment_id(raw: str) -> None:
    assert canonical_payment_id(raw) is None
    assert validate(_req(payment_id=raw), LedgerSettings()) is not None


@pytest.mark.parametrize("account", ["acct-2\n", "acct-2\r", "ac\nct", "a" * 65, "ünï"])
def test_an_account_must_match_its_pattern_in_full(account: str) -> None:
    result = validate(_req(credit_account=account), LedgerSettings())
    assert result is not None and result[0] is RejectionReason.INVALID_ACCOUNT


@pytest.mark.parametrize(
    ("code", "limit_minor"), [("EUR", 100_000_000), ("JPY", 1_000_000), ("KWD", 1_000_000_000)]
)
def test_the_amount_limit_is_per_currency_by_its_minor_unit_digits(
    code: str, limit_minor: int
) -> None:
    settings = LedgerSettings()
    assert validate(_req(currency=code, amount_minor=limit_minor), settings) is None
    result = validate(_req(currency=code, amount_minor=limit_minor + 1), settings)
    assert result is not None and result[0] is RejectionReason.AMOUNT_TOO_LARGE


def test_a_currency_outside_the_table_cannot_be_configured() -> None:
    with pytest.raises(ValidationError, match="unknown currency code"):
        LedgerSettings(currencies=["EUR", "XQZ"])
    result = validate(_req(currency="XQZ"), LedgerSettings(currencies=["EUR"]))
    assert result is not None and result[0] is RejectionReason.UNKNOWN_CURRENCY


def test_amounts_read_in_major_units() -> None:
    assert CURRENCIES["EUR"].units(12345) == "123.45 EUR"
    assert CURRENCIES["JPY"].units(500) == "500 JPY"
    assert CURRENCIES["KWD"].units(-1005) == "-1.005 KWD"
