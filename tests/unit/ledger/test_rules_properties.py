"""Properties of the ledger's validation rules (eos/ledger/rules.py).

Each rule is restated below in plain Python (`_is_uuid_form`, `_is_account`, `_expected`) rather
than with the regexes of rules.py, so a change to a pattern that accepts a bad value breaks a
property instead of silently moving the test along with it."""

from __future__ import annotations

import string
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eos.ledger.currencies import CURRENCIES
from eos.ledger.models import PaymentRequest, RejectionReason
from eos.ledger.rules import canonical_payment_id, validate
from eos.ledger.settings import LedgerSettings

R = RejectionReason
Fields = dict[str, object]

# An example takes a few milliseconds; no deadline, so a loaded CI machine cannot make
# one fail for being slow.
_FAST = settings(max_examples=150, deadline=None)

# The order in which validate reports broken rules: the first one broken is the reason.
# UNKNOWN_CURRENCY precedes AMOUNT_TOO_LARGE because the limit is the currency's.
_ORDER = (
    R.INVALID_ID,
    R.INVALID_ACCOUNT,
    R.SAME_ACCOUNT,
    R.INVALID_AMOUNT,
    R.UNKNOWN_CURRENCY,
    R.AMOUNT_TOO_LARGE,
)

_HEX = "0123456789abcdefABCDEF"
_HYPHENS = (8, 13, 18, 23)
_ALNUM = string.ascii_letters + string.digits
_ACCOUNT_CHARS = _ALNUM + ":._-"
_CODES = sorted(CURRENCIES)
# The limit in minor units hangs on the digits: these are drawn as often as all the rest.
_ODD_DIGITS = [c for c in _CODES if CURRENCIES[c].digits != 2]
_AT = datetime(2024, 1, 1, tzinfo=UTC)
# The default, not LedgerSettings(): this runs at import, before the env is cleared.
_EXTERNAL_PREFIX = str(LedgerSettings.model_fields["external_prefix"].default)


def _is_uuid_form(raw: str) -> bool:
    return len(raw) == 36 and all(
        c == "-" if i in _HYPHENS else c in _HEX for i, c in enumerate(raw)
    )


def _is_account(raw: str) -> bool:
    return 1 <= len(raw) <= 64 and raw[0] in _ALNUM and all(c in _ACCOUNT_CHARS for c in raw)


def _expected(f: Fields, configured: list[str]) -> RejectionReason | None:
    """The reason the rules as written give for these fields (None: well-formed)."""
    payment_id, debit, credit = (
        str(f["payment_id"]),
        str(f["debit_account"]),
        str(f["credit_account"]),
    )
    amount, code = f["amount_minor"], str(f["currency"])
    assert isinstance(amount, int)
    if not _is_uuid_form(payment_id):
        return R.INVALID_ID
    if not (_is_account(debit) and _is_account(credit)):
        return R.INVALID_ACCOUNT
    if debit == credit:
        return R.SAME_ACCOUNT
    if amount <= 0:
        return R.INVALID_AMOUNT
    if code not in CURRENCIES or code not in configured:
        return R.UNKNOWN_CURRENCY
    if amount > CURRENCIES[code].max_minor:
        return R.AMOUNT_TOO_LARGE
    return None


def _reason(f: Fields, configured: list[str]) -> RejectionReason | None:
    result = validate(
        PaymentRequest.model_validate(f), LedgerSettings.model_construct(currencies=configured)
    )
    if result is None:
        return None
    reason, detail = result
    assert isinstance(detail, str) and detail
    return reason


# Characters that sit next to the allowed ones or that a lax check lets through: line ends
# (`$` matches before "\n"), controls, case-folding look-alikes (Kelvin sign, long s, dotted I),
# full-width and Arabic-Indic digits, and lone surrogates, which PaymentRequest accepts.
_TRICKY = (
    "\n\r\t \x00\x1f\x7f\x85\xa0\u2028\u212a\u017f\u0130\u0131\uff10\uff41\u0660\xe9\ud800\udfff"
)
_char = st.one_of(st.sampled_from(_TRICKY), st.characters(exclude_categories=()))
_text = st.text(_char, max_size=80)
_ints = st.one_of(st.integers(), st.integers(-(2**256), 2**256))


def _hex(n: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(_HEX), min_size=n, max_size=n)


# Any hex digits in any letter case: the rules take the string form, not a UUID version.
_uuid_forms = st.tuples(_hex(8), _hex(4), _hex(4), _hex(4), _hex(12)).map("-".join)


@st.composite
def _near_uuids(draw: st.DrawFn) -> str:
    """A UUID form with one edit or another spelling, or any text; may by chance still be
    well-formed."""
    u = draw(_uuid_forms)
    i = draw(st.integers(0, len(u) - 1))
    h = draw(st.sampled_from(_HYPHENS))
    c = draw(_char)
    return draw(
        st.sampled_from(
            [
                u[:i] + c + u[i + 1 :],
                u[:i] + c + u[i:],
                u[:i] + u[i + 1 :],
                u[:h] + u[h + 1 :],
                u[:h] + u[h + 1] + "-" + u[h + 2 :],
                u + c,
                u + "\n",
                draw(_text),
                f"{{{u}}}",
                f"urn:uuid:{u}",
                u.replace("-", ""),
            ]
        )
    )


_bad_ids = _near_uuids().filter(lambda s: not _is_uuid_form(s))

_account_tail = st.text(st.sampled_from(_ACCOUNT_CHARS), max_size=63)
_accounts = st.one_of(
    st.builds(str.__add__, st.sampled_from(_ALNUM), _account_tail),
    # the longest account there may be, which generation alone rarely reaches
    st.builds(str.__add__, st.sampled_from(_ALNUM), _account_tail.map(lambda t: t.ljust(63, "z"))),
    st.builds(str.__add__, st.just(_EXTERNAL_PREFIX), _account_tail.map(lambda t: t[:60])),
)


@st.composite
def _near_accounts(draw: st.DrawFn) -> str:
    """An account with one edit, or any text; may by chance still be well-formed."""
    a = draw(_accounts)
    i = draw(st.integers(0, len(a)))
    c = draw(_char.filter(lambda c: c not in _ACCOUNT_CHARS))
    return draw(
        st.sampled_from(
            [
                a[:i] + c + a[i:],
                a[:i] + c + a[i + 1 :],
                a + "\n",
                draw(st.sampled_from(":._-")) + a[1:],
                (a + "0" * 65)[:65],
                (a + "0" * 65)[: draw(st.integers(66, 80))],
                "",
                draw(_text),
            ]
        )
    )


_bad_accounts = _near_accounts().filter(lambda s: not _is_account(s))

_bad_codes = st.one_of(
    st.sampled_from(_CODES).flatmap(
        lambda c: st.sampled_from(
            [c.lower(), c.title(), c + " ", c + "\n", " " + c, c[:2], c + "X"]
        )
    ),
    _text,
).filter(lambda s: s not in CURRENCIES)


@st.composite
def _well_formed(draw: st.DrawFn) -> tuple[Fields, list[str]]:
    """A payment every rule accepts, and the currencies its ledger is configured with."""
    code = draw(st.one_of(st.sampled_from(_CODES), st.sampled_from(_ODD_DIGITS)))
    accepted = sorted({code, *draw(st.lists(st.sampled_from(_CODES)))})
    # Codes configured but missing from the table (settings refuse them; built here
    # without validation) must never make a payment valid.
    configured = accepted + draw(st.lists(_bad_codes, max_size=2))
    limit = CURRENCIES[code].max_minor
    debit = draw(_accounts)
    fields: Fields = {
        "payment_id": draw(_uuid_forms),
        "debit_account": debit,
        # Accounts are compared exactly (they key the partitions): "Acct" is not "acct".
        "credit_account": draw(
            st.one_of(_accounts, st.just(debit.swapcase())).filter(lambda a: a != debit)
        ),
        "amount_minor": draw(st.one_of(st.integers(1, limit), st.sampled_from([1, limit]))),
        "currency": code,
        "requested_at": _AT,
    }
    return fields, configured


def _break(data: st.DataObject, rule: RejectionReason, f: Fields, configured: list[str]) -> None:
    """Break `rule` (only) in `f` / `configured`, in place."""
    if rule is R.INVALID_ID:
        f["payment_id"] = data.draw(_bad_ids)
    elif rule is R.INVALID_ACCOUNT:
        f[data.draw(st.sampled_from(["debit_account", "credit_account"]))] = data.draw(
            _bad_accounts
        )
    elif rule is R.SAME_ACCOUNT:
        f["credit_account"] = f["debit_account"]
    elif rule is R.INVALID_AMOUNT:
        f["amount_minor"] = data.draw(st.one_of(st.integers(max_value=0), st.just(-(2**200))))
    elif rule is R.AMOUNT_TOO_LARGE:
        limit = CURRENCIES[str(f["currency"])].max_minor
        f["amount_minor"] = data.draw(st.one_of(st.integers(min_value=limit + 1), st.just(2**200)))
    elif rule is R.UNKNOWN_CURRENCY:
        if data.draw(st.booleans()):  # a code the table lacks, sometimes even configured
            f["currency"] = code = data.draw(_bad_codes)
            if data.draw(st.booleans()):
                configured.append(code)
        else:  # a code of the table this ledger does not accept
            f["currency"] = code = data.draw(st.sampled_from(_CODES))
            configured[:] = [c for c in configured if c != code]
    else:
        raise AssertionError(rule)


# Breaking SAME_ACCOUNT before INVALID_ACCOUNT keeps a malformed account malformed, and
# AMOUNT_TOO_LARGE before UNKNOWN_CURRENCY reads the limit of a currency of the table.
_BREAK_ORDER = (
    R.SAME_ACCOUNT,
    R.INVALID_ACCOUNT,
    R.INVALID_ID,
    R.INVALID_AMOUNT,
    R.AMOUNT_TOO_LARGE,
    R.UNKNOWN_CURRENCY,
)


@_FAST
@given(_well_formed())
def test_every_well_formed_payment_is_accepted(payment: tuple[Fields, list[str]]) -> None:
    fields, configured = payment
    assert _reason(fields, configured) is None


@settings(_FAST, max_examples=300)
@given(_well_formed(), st.sampled_from(_ORDER), st.data())
def test_breaking_one_rule_gives_exactly_its_reason(
    payment: tuple[Fields, list[str]], rule: RejectionReason, data: st.DataObject
) -> None:
    fields, configured = payment
    _break(data, rule, fields, configured)
    assert _reason(fields, configured) is rule


@settings(_FAST, max_examples=100)
@pytest.mark.parametrize(
    ("field", "allowed", "reason"),
    [
        ("payment_id", _HEX + "-", R.INVALID_ID),
        ("debit_account", _ACCOUNT_CHARS, R.INVALID_ACCOUNT),
        ("credit_account", _ACCOUNT_CHARS, R.INVALID_ACCOUNT),
    ],
    ids=["id", "debit", "credit"],
)
@given(_well_formed(), st.integers(0, 64), st.booleans(), st.data())
def test_one_foreign_character_anywhere_makes_a_field_malformed(
    field: str,
    allowed: str,
    reason: RejectionReason,
    payment: tuple[Fields, list[str]],
    at: int,
    replace: bool,
    data: st.DataObject,
) -> None:
    # The broad properties above reach this case only now and then; a pattern that lets
    # non-ASCII letters or a final newline through shows up here on every run.
    fields, configured = payment
    value = str(fields[field])
    at = min(at, len(value))
    foreign = data.draw(_char.filter(lambda c: c not in allowed))
    fields[field] = value[:at] + foreign + value[at + replace :]
    assert _reason(fields, configured) is reason


@_FAST
@given(
    _well_formed(),
    # both set the amount, so at most one of them
    st.sets(st.sampled_from(_ORDER), min_size=2).filter(
        lambda s: not {R.INVALID_AMOUNT, R.AMOUNT_TOO_LARGE} <= s
    ),
    st.data(),
)
def test_of_several_broken_rules_the_first_in_order_is_the_reason(
    payment: tuple[Fields, list[str]], rules: set[RejectionReason], data: st.DataObject
) -> None:
    fields, configured = payment
    for rule in _BREAK_ORDER:
        if rule in rules:
            _break(data, rule, fields, configured)
    assert _reason(fields, configured) is min(rules, key=_ORDER.index)


@st.composite
def _anything(draw: st.DrawFn) -> tuple[Fields, list[str]]:
    """Any payment at all, each field now well-formed, now nearly so, now arbitrary."""
    debit = draw(st.one_of(_accounts, _near_accounts(), _text))
    fields: Fields = {
        "payment_id": draw(st.one_of(_uuid_forms, _near_uuids(), _text)),
        "debit_account": debit,
        "credit_account": draw(st.one_of(st.just(debit), _accounts, _near_accounts(), _text)),
        "amount_minor": draw(_ints),
        "currency": draw(st.one_of(st.sampled_from(_CODES), _bad_codes)),
        "requested_at": _AT,
        "reference": draw(st.one_of(st.none(), _text)),
    }
    configured = draw(st.lists(st.one_of(st.sampled_from(_CODES), _bad_codes), max_size=4))
    return fields, configured


@settings(_FAST, max_examples=300)
@given(_anything())
def test_validate_never_raises_and_agrees_with_the_rules_as_written(
    payment: tuple[Fields, list[str]],
) -> None:
    fields, configured = payment
    assert _reason(fields, configured) is _expected(fields, configured)


@settings(_FAST, max_examples=300)
@given(st.one_of(_uuid_forms, _near_uuids(), _text))
def test_the_canonical_id_exists_exactly_for_the_hyphenated_uuid_form(raw: str) -> None:
    canonical = canonical_payment_id(raw)
    assert (canonical is not None) is _is_uuid_form(raw)
    if canonical is not None:
        assert canonical_payment_id(canonical) == canonical


@_FAST
@given(_uuid_forms, st.lists(st.booleans(), min_size=36, max_size=36))
def test_the_canonical_id_is_one_lower_case_spelling_of_the_uuid(
    raw: str, upper: list[bool]
) -> None:
    canonical = canonical_payment_id(raw)
    assert canonical is not None
    assert canonical == str(uuid.UUID(raw))
    assert all(c in "0123456789abcdef-" for c in canonical)
    assert canonical_payment_id(canonical) == canonical
    mixed = "".join(c.upper() if u else c.lower() for c, u in zip(raw, upper, strict=True))
    for spelling in (raw.upper(), raw.lower(), mixed):
        assert canonical_payment_id(spelling) == canonical
