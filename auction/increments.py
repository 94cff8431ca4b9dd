"""The bid increment ladder (DESIGN.md, Rules), in fen."""

from auction.money import FEN_PER_YUAN

# (price below, step), in yuan: the step that applies while the current price
# is below the bound.
DEFAULT_LADDER_YUAN: tuple[tuple[int, int], ...] = (
    (1_000, 50),
    (5_000, 100),
    (10_000, 200),
    (50_000, 500),
    (100_000, 1_000),
    (500_000, 2_000),
    (1_000_000, 5_000),
)
TOP_STEP_YUAN = 10_000


def ladder_increment(price: int) -> int:
    """The step after a current price of ``price`` fen, by the default ladder."""
    for bound, step in DEFAULT_LADDER_YUAN:
        if price < bound * FEN_PER_YUAN:
            return step * FEN_PER_YUAN
    return TOP_STEP_YUAN * FEN_PER_YUAN


def increment_after(price: int, *, fixed_increment: int = 0) -> int:
    return fixed_increment or ladder_increment(price)


def next_min_bid(*, current_price: int, bid_count: int, start_price: int, fixed_increment: int = 0) -> int:
    """The first bid is at least the start price; each later one a step above."""
    if bid_count == 0:
        return start_price
    return current_price + increment_after(current_price, fixed_increment=fixed_increment)


def highest_price_outbid_by(price: int, *, fixed_increment: int = 0) -> int:
    """The highest current price that ``price`` beats by a full step; it beats
    every lower one too, since price + step rises with the price. -1 if none."""
    if fixed_increment:
        return price - fixed_increment
    best, low = -1, 0
    for bound_yuan, step_yuan in (*DEFAULT_LADDER_YUAN, (None, TOP_STEP_YUAN)):
        highest_in_tier = price - step_yuan * FEN_PER_YUAN
        if bound_yuan is not None:
            highest_in_tier = min(highest_in_tier, bound_yuan * FEN_PER_YUAN - 1)
        if highest_in_tier >= low:
            best = highest_in_tier
        if bound_yuan is not None:
            low = bound_yuan * FEN_PER_YUAN
    return best
