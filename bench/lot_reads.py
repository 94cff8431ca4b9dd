"""CPU of a hub's lot reads: each lot on its own vs all due lots in one call (bench/ only).

    DATABASE_URL=mysql://root@127.0.0.1:3306/auction_live_bench_lf .venv/bin/python bench/lot_reads.py --rounds 20

Reads the newest ``--lots`` lots of the database (bench/watchers.py seeds them)
with ``live.reads.lot_changes`` as a hub does after a change, each lot asking
for its last ``--new-bids`` bids, and reports the process CPU per lot read
(``time.process_time``: this process's Python and driver, not the server's).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--new-bids", type=int, default=1)
    args = parser.parse_args()
    import django

    django.setup()
    from auction.models import Bid, Lot
    from live import reads

    lot_ids = list(Lot.objects.filter(is_published=True).order_by("-id").values_list("id", flat=True)[: args.lots])
    after = {}
    for lot_id in lot_ids:
        ids = list(Bid.objects.filter(lot_id=lot_id).order_by("-id").values_list("id", flat=True)[: args.new_bids + 1])
        after[lot_id] = ids[-1] - 1 if len(ids) <= args.new_bids else ids[-1]
    reads.lot_changes(after)  # warm: connection, lot cards
    result = {"lots": len(lot_ids), "rounds": args.rounds, "new_bids": args.new_bids}
    for name, calls in (("one_by_one", [{lot_id: after[lot_id]} for lot_id in lot_ids]), ("batched", [after])):
        started = time.process_time()
        for _ in range(args.rounds):
            for call in calls:
                reads.lot_changes(call)
        result[f"{name}_us_per_lot"] = round((time.process_time() - started) / args.rounds / len(lot_ids) * 1e6, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
