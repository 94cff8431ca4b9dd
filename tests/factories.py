"""Factories for market rows, users and images; pages are made in tests/pages.py."""

from datetime import timedelta
from io import BytesIO

import factory
from django.core.files.images import ImageFile
from django.utils import timezone
from PIL import Image as PILImage
from wagtail.images import get_image_model

from auction.models import Bid, Coupon, Lot, Special, User


def png_file(name: str = "picture.png", size: tuple[int, int] = (1200, 900), color: str = "#b03a2e") -> ImageFile:
    buffer = BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "PNG")
    return ImageFile(BytesIO(buffer.getvalue()), name=name)


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_image_model()

    title = factory.Sequence(lambda n: f"image {n}")
    file = factory.LazyFunction(png_file)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"wx:openid-{n}")
    openid = factory.Sequence(lambda n: f"openid-{n}")
    nickname = factory.Sequence(lambda n: f"竞拍者{n}")


class SpecialFactory(factory.django.DjangoModelFactory):
    """A published special in bidding: started an hour ago, ends in an hour."""

    class Meta:
        model = Special

    title = factory.Sequence(lambda n: f"专场 {n}")
    description = "<p>A special.</p>"
    preview_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=2))
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    is_published = True


class LotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lot

    special = factory.SubFactory(SpecialFactory)
    title = factory.Sequence(lambda n: f"拍品 {n}")
    description = "<p>A lot.</p>"
    position = 0
    start_price = 100_000
    deposit = 50_000
    ends_at = factory.LazyAttribute(lambda lot: lot.special.lot_ends_at(lot.position))
    is_published = True


class BidFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bid

    lot = factory.SubFactory(LotFactory)
    user = factory.SubFactory(UserFactory)
    price = 100_000


class CouponFactory(factory.django.DjangoModelFactory):
    """Claimable now (for a day), ¥100 off any order, 7 days' validity from the claim."""

    class Meta:
        model = Coupon

    title = factory.Sequence(lambda n: f"优惠券 {n}")
    amount = 10_000
    min_amount = 0
    total = 100
    per_user_limit = 1
    claim_starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    claim_ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    valid_days = 7
