"""Money is integer fen; yuan appear only where a person reads or types them."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _

FEN_PER_YUAN = 100
# 10 billion yuan: far above any lot, far below a 64-bit overflow.
MAX_FEN = 10**12


def yuan_to_fen(value: str | Decimal | int) -> int:
    """Parse an amount a person typed in yuan ("1200", "1200.50") into fen.

    Raises ValueError for anything that is not a non-negative amount with at
    most two decimals: a third decimal would be money nobody can pay.
    """
    text = str(value).strip().replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(_("“%(value)s” is not an amount in yuan") % {"value": value}) from None
    if not amount.is_finite():
        raise ValueError(_("“%(value)s” is not an amount in yuan") % {"value": value})
    if amount > MAX_FEN:
        # Checked before quantize, which overflows on numbers like 1e40.
        raise ValueError(_("an amount this large is not plausible"))
    if amount < 0:
        raise ValueError(_("an amount cannot be negative"))
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(_("an amount has at most two decimals (fen)"))
    fen = int((amount * FEN_PER_YUAN).to_integral_value(rounding=ROUND_HALF_UP))
    if fen > MAX_FEN:
        raise ValueError(_("an amount this large is not plausible"))
    return fen


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def format_yuan(fen: int) -> str:
    yuan = fen_to_yuan(fen)
    return f"¥{yuan:,.0f}" if yuan == yuan.to_integral_value() else f"¥{yuan:,.2f}"


class TwoDecimalsFormField(forms.DecimalField):
    """Typed with up to two decimals, stored as an integer (fen, basis points):
    changed only when the integer would change."""

    def has_changed(self, initial, data) -> bool:
        try:
            cleaned = self.clean(data)
        except ValidationError:
            return True
        return (initial or 0) != (cleaned or 0)

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs["step"] = "0.01"
        return attrs


class YuanFormField(TwoDecimalsFormField):
    """A form field in which people type yuan; it cleans to integer fen."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        for unused in ("max_value",):
            kwargs.pop(unused, None)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        # Initial data is fen from the model; re-shown input is the typed yuan.
        if isinstance(value, int):
            return fen_to_yuan(value)
        return value

    def clean(self, value):
        amount = super().clean(value)
        if amount is None:
            return None
        try:
            return yuan_to_fen(amount)
        except ValueError as error:
            raise ValidationError(str(error), code="invalid") from None



class FenField(models.PositiveBigIntegerField):
    """Stored in fen; edited in yuan with up to two decimals."""

    def formfield(self, **kwargs):
        defaults = {"form_class": YuanFormField}
        defaults.update(kwargs)
        return super().formfield(**defaults)


BASIS_POINTS_PER_PERCENT = 100
MAX_BASIS_POINTS = 10_000  # 100 %


def percent_to_basis_points(value: str | Decimal | int) -> int:
    """"15" or "12.5" percent → 1500 or 1250 basis points; at most two decimals."""
    try:
        percent = Decimal(str(value).strip().rstrip("%").strip())
    except InvalidOperation:
        raise ValueError(_("“%(value)s” is not a percentage") % {"value": value}) from None
    if not percent.is_finite() or not 0 <= percent <= 100:
        raise ValueError(_("a percentage is between 0 and 100"))
    if percent != percent.quantize(Decimal("0.01")):
        raise ValueError(_("a percentage has at most two decimals"))
    return int(percent * BASIS_POINTS_PER_PERCENT)


def premium_for(price: int, rate: int) -> int:
    """佣金 in fen: price × rate / 10,000 rounded half up, in integers (no float)."""
    return (price * rate + MAX_BASIS_POINTS // 2) // MAX_BASIS_POINTS


class PercentFormField(TwoDecimalsFormField):
    """People type a percentage with up to two decimals; it cleans to basis points."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 100)
        kwargs.setdefault("max_digits", 5)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, int):
            return (Decimal(value) / BASIS_POINTS_PER_PERCENT).quantize(Decimal("0.01"))
        return value

    def clean(self, value):
        percent = super().clean(value)
        if percent is None:
            return None
        return percent_to_basis_points(percent)



class BasisPointsField(models.PositiveIntegerField):
    """Stored in basis points; edited as a percentage with up to two decimals."""

    def formfield(self, **kwargs):
        defaults = {"form_class": PercentFormField}
        defaults.update(kwargs)
        return super().formfield(**defaults)
