"""What a subscribe message says: Chinese, amounts in yuan, times in Asia/Shanghai,
each value cut to its key's limit so WeChat never refuses one for its length.

A template's keys are typed by their name (``thing1`` is a ``thing``,
``amount2`` an ``amount``); settings map each key to one of the values
below (``lot_title``, ``amount_due``, ...).
"""

import re
import unicodedata
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

# Per key type, the longest value WeChat takes (FACTS.md, "Template value limits").
LENGTH_LIMITS = {
    "thing": 20, "number": 32, "letter": 32, "symbol": 5, "character_string": 32, "phone_number": 17,
    "car_number": 8, "name": 10, "phrase": 5,
}
_KEY = re.compile(r"^([a-z_]+?)(\d+)$")
_CHARACTER_STRING = re.compile(r"[^0-9A-Za-z!-/:-@\[-`{-~]")


def key_type(key: str) -> str:
    match = _KEY.match(key)
    return match.group(1) if match else key


def yuan(fen: int) -> str:
    """``¥1200.50``; whole yuan without decimals (``¥1200``): WeChat's amount
    takes a currency sign and at most 10 digits."""
    value = Decimal(fen) / 100
    text = f"{value:.2f}".removesuffix(".00")
    if len(text.replace(".", "")) > 10:
        text = f"{value:.0f}"
    return "¥" + text


def shanghai_time(moment: datetime) -> str:
    """``2026年12月2日 15:01``: the date and a 24-hour time, as WeChat's time keys take them."""
    local = timezone.localtime(moment)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _clean(text: str) -> str:
    # No control characters in any value (WeChat refuses them); newlines become spaces.
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text).strip()


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, an ellipsis marking a cut (counted in the limit)."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def fit(key: str, value: str) -> str:
    """``value`` made acceptable for a key of this name."""
    kind = key_type(key)
    text = _clean(value)
    if kind == "character_string":
        return _CHARACTER_STRING.sub("", text)[:32]
    if kind in ("number", "letter", "symbol", "phone_number", "car_number"):
        return text[: LENGTH_LIMITS[kind]]
    if kind in LENGTH_LIMITS:
        return _cut(text, LENGTH_LIMITS[kind])
    return text


def template_data(fields: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """Each key of the template with the value settings map it to, fitted to its type."""
    return {key: fit(key, values.get(source, "")) for key, source in fields.items()}
