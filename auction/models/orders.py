from django.conf import settings
from django.db import models

from auction.models.catalog import Lot


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "待支付"
    PAID = "paid", "已支付"
    OVERDUE = "overdue", "逾期未付款"


class Order(models.Model):
    order_no = models.CharField(max_length=32, unique=True)
    lot = models.OneToOneField(Lot, on_delete=models.PROTECT, related_name="order")  # one order per lot
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT)
    price = models.PositiveBigIntegerField(help_text="fen: the hammer price")
    # 佣金: rate × price rounded half up, fixed when the order is made; orders
    # made before the premium existed keep 0.
    premium = models.PositiveBigIntegerField(default=0, help_text="fen: the buyer's premium")
    deposit_credit = models.PositiveBigIntegerField(default=0, help_text="fen: the winner's lot deposit")
    coupon_discount = models.PositiveBigIntegerField(default=0, help_text="fen")
    pay_deadline = models.DateTimeField()
    address = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "status"]), models.Index(fields=["status", "pay_deadline"])]

    def __str__(self) -> str:
        return self.order_no

    @property
    def amount_due(self) -> int:
        return max(0, self.total - self.deposit_credit - self.coupon_discount)

    @property
    def total(self) -> int:
        """What the buyer owes before credits: the hammer price and the premium."""
        return self.price + self.premium
