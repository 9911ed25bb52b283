"""Personal data in string columns: e-mail addresses, phone numbers and card numbers.

`kind(value)` names the pattern a value matches; `scan(df)` finds string columns most of whose
values match one (validate warns, or refuses with `validate.pii_scan: refuse`, before anything is
written); `redact(value)` is what a finding may show of a string value.
"""

from __future__ import annotations

import re

import pandas as pd

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"\+?\(?\d{1,4}\)?([\s.-]?\(?\d{2,5}\)?){2,5}")
CARD = re.compile(r"\d{4}([ -]?\d{3,4}){2,4}")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def kind(value) -> str | None:
    """'e-mail', 'card number' or 'phone number' when the whole string looks like one, else None.
    Phone numbers need a leading + or separators (a bare run of digits is more often an id)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    v = value.strip()
    if EMAIL.fullmatch(v):
        return "e-mail"
    digits = re.sub(r"\D", "", v)
    if CARD.fullmatch(v) and 13 <= len(digits) <= 19 and _luhn(digits):
        return "card number"
    if PHONE.fullmatch(v) and 7 <= len(digits) <= 15 and (v.startswith("+") or re.search(r"[\s.()-]", v)):
        return "phone number"
    return None


def scan(df: pd.DataFrame, exclude=(), sample: int = 2000, min_share: float = 0.5) -> list[tuple[str, str, int, int]]:
    """(column, kind, matching, sampled) for each text column, not in `exclude`, where at least
    `min_share` of up to `sample` non-null values look like one kind of personal data."""
    out = []
    for c in df.columns:
        s = df[c]
        if c in exclude or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
            continue
        present = s.dropna()
        present = present[present.map(lambda v: isinstance(v, str))].head(sample)
        if present.empty:
            continue
        kinds = present.map(kind).value_counts()
        if len(kinds) and kinds.iloc[0] >= min_share * len(present):
            out.append((str(c), str(kinds.index[0]), int(kinds.iloc[0]), len(present)))
    return out


def redact(value):
    """A string that looks personal as `<e-mail, 17 chars>`; anything else unchanged."""
    k = kind(value)
    return f"<{k}, {len(value)} chars>" if k else value
