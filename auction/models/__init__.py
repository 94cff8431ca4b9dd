from auction.models.catalog import Bid, Lot, LotImage, LotStatus, Special, SpecialStatus
from auction.models.users import AuthToken, User

__all__ = ["AuthToken", "Bid", "Lot", "LotImage", "LotStatus", "Special", "SpecialStatus", "User"]
