"""CPU per accepted bid through the WSGI callable gunicorn serves, in-process.

    .venv/bin/python bench/bid_cpu.py [--n 2000]

No server and no contention: two bidders take turns on a fresh lot (made by
bench/bidpath.py's seed, in ``auction_bench``: run bench/bids.py first),
each bid one step above the last, sent as gunicorn would send it to
``project.wsgi.application``. Prints the median over blocks of 200 bids of
the process's CPU time per bid (every thread) (the app, Django, Ninja and MySQLdb's client
side; MariaDB's own CPU is not in it) and of the wall time. Compare two
versions of the code on the same box minutes apart: the VM's speed drifts.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bidpath  # noqa: E402  (sets the environment before Django loads)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    import django

    django.setup()
    from project.wsgi import application

    lot, tokens = bidpath.seed()
    send_bid = bidpath.wsgi_bidder(lot, tokens)

    def one_bid() -> None:
        send_bid(application)

    for _ in range(50):
        one_bid()  # connections, caches, the URLconf
    cpu, wall = [], []
    for _ in range(max(args.n // 200, 1)):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(200):
            one_bid()
        cpu.append((time.process_time() - c0) / 200 * 1e6)
        wall.append((time.perf_counter() - w0) / 200 * 1e6)
    # The process's CPU, every thread: the live room's publisher thread is paid for here.
    # The least disturbed block (min) is the steadiest figure on a shared box.
    print(f"accepted bids: CPU {statistics.median(cpu):.0f} µs/bid (median of {len(cpu)} blocks of 200, "
          f"min {min(cpu):.0f}), wall {statistics.median(wall):.0f} µs/bid")


if __name__ == "__main__":
    main()
