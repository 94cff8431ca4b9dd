"""Where a request's time goes, from py-spy's collapsed stacks (bench/bids.py --profile DIR).

    python bench/profile_summary.py DIR/bids-4x2-64.txt [--top 25]

Only samples of threads inside a request (below gunicorn's handle_request)
count. Each sample goes to the first bucket whose marker appears walking
from the leaf up, so "token lookup" means time inside token_user whatever it
was doing (Python or waiting on MariaDB). A second split says whether the
sample's leaf was waiting on MariaDB (inside MySQLdb's query/commit),
Redis, the socket, a lock, or running Python.
"""

import argparse
import re
from collections import Counter
from pathlib import Path

# (bucket, markers); the first bucket whose marker is found nearest the leaf wins.
BUCKETS = [
    ("auth: token lookup (token_user)", ["token_user ("]),
    ("bid: read lot, deposit, proxies (market_read)", ["market_read ("]),
    ("bid: lock lot (SELECT ... FOR UPDATE, proxies)", ["_open_market ("]),
    ("bid: proxies SELECT", ["Market.resolve_proxies ("]),
    ("bid: write lot + bid (market_write)", ["market_write ("]),
    ("bid: COMMIT/ROLLBACK (atomic exit)", ["Atomic.__exit__ ("]),
    ("bid: BEGIN (atomic enter)", ["Atomic.__enter__ ("]),
    ("response: lot card (Redis cache)", ["lot_card ("]),
    ("response: presenter", ["lot_after_bid (", "presenters.py"]),
    ("catalog: specials query", ["specials_list (", "paginated ("]),
    ("ninja: input parsing/validation", ["_get_values (", "ViewSignature", "model_validate"]),
    ("ninja: output validation + JSON", ["_result_to_response (", "create_response (", "NinjaJSONEncoder", "JsonResponse.__init__"]),
    ("ninja: auth dispatch", ["_run_authentication ("]),
    ("ninja: exception -> error response", ["on_exception (", "error_response ("]),
    ("django: logging of 4xx (django.request)", ["log_response ("]),
    ("django: close_old_connections / signals", ["close_old_connections (", "Signal.send ("]),
    ("django: middleware", ["middleware", "MiddlewareMixin"]),
    ("django: handler, URL resolve", ["WSGIHandler", "get_response (", "resolve ("]),
    ("gunicorn: access log", ["Logger.access ("]),
    ("gunicorn: parse/write", ["handle_request (", "gunicorn/http"]),
]

LEAF_KINDS = [
    ("MariaDB round trip", re.compile(r"MySQLdb|_mysql|Connection\.(commit|rollback)|Cursor\._query|cursor\.py")),
    ("Redis round trip", re.compile(r"redis/")),
    ("logging I/O", re.compile(r"logging/__init__.py|StreamHandler")),
    ("socket I/O", re.compile(r"socket\.py|sendall|recv|gunicorn/http/unreader|gunicorn/util.py")),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=20, help="also show the top N leaf frames")
    args = parser.parse_args()
    buckets: Counter = Counter()
    kinds: Counter = Counter()
    by_bucket_kind: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    for line in Path(args.path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "handle_request (gunicorn" not in stack:
            continue
        n = int(count)
        frames = stack.split(";")
        frames = frames[next(i for i, f in enumerate(frames) if "handle_request (gunicorn" in f):]
        total += n
        bucket = "other"
        for frame in reversed(frames):
            hit = next((name for name, markers in BUCKETS if any(m in frame for m in markers)), None)
            if hit:
                bucket = hit
                break
        leaf_tail = ";".join(frames[-3:])
        kind = next((name for name, rx in LEAF_KINDS if rx.search(frames[-1])), None) or next(
            (name for name, rx in LEAF_KINDS if rx.search(leaf_tail)), "Python (CPU or GIL wait)"
        )
        buckets[bucket] += n
        kinds[kind] += n
        by_bucket_kind[(bucket, kind)] += n
        leaves[re.sub(r":\d+\)", ")", frames[-1])] += n
    if not total:
        print("no request samples")
        return
    print(f"{total} samples inside requests ({args.path})\n")
    print(f"{'share':>6}  bucket (what the request was doing)")
    for name, n in buckets.most_common():
        split = ", ".join(f"{k} {100 * c / n:.0f}%" for (b, k), c in by_bucket_kind.most_common() if b == name)
        print(f"{100 * n / total:5.1f}%  {name}  [{split}]")
    print(f"\n{'share':>6}  leaf kind")
    for name, n in kinds.most_common():
        print(f"{100 * n / total:5.1f}%  {name}")
    print(f"\n{'share':>6}  top leaf frames")
    for name, n in leaves.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
