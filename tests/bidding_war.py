"""What the bidding wars over HTTP share (tests/journey.py's War, the fault
tests' BiddingWar): a thread per bidder on one lot, bidding from the start of
the ``with`` block to its end, each bid at the lowest price the last answer
allowed (``next_price``, under ``lock``), every answer kept in ``answers``."""

import threading


class BidderThreads:
    # A bidder still in a request when the war ends gets this long to finish it.
    join_seconds: float = 30

    def __init__(self, lot_id: int, bidders: list, start_price: int):
        self.lot_id = lot_id
        self.next_price = start_price
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.answers: list = []
        self.threads = [threading.Thread(target=self.bid, args=(bidder,), daemon=True) for bidder in bidders]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=self.join_seconds)

    def raise_price(self, price: int) -> None:
        with self.lock:
            self.next_price = max(self.next_price, price)

    def bid(self, bidder) -> None:
        """One bidder's loop, until ``stopping`` is set (bounded)."""
        raise NotImplementedError
