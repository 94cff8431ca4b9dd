"""Summarize bench/instrumented_wsgi.py's records: where a request's time goes, under load.

    python bench/instrument_summary.py DIR [--since EPOCH] [--until EPOCH]

Groups requests by method, path and status and prints, per group, the mean,
median and p99 (in ms) of: wall time inside Django, thread CPU, time in
MariaDB round trips and their count, the SELECT ... FOR UPDATE (lock wait),
the row lock held, COMMIT/ROLLBACK, the token lookup, Redis, Ninja's
response rendering, and "unaccounted" = wall - CPU - MariaDB - Redis (mostly
waiting for the GIL or a core: the thread was runnable but not running).
"""

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

FIELDS = [
    ("wall", "wall in Django"),
    ("cpu", "thread CPU"),
    ("db", "MariaDB round trips"),
    ("read_rt", "  of which the market read"),
    ("write_rt", "  of which the one-trip write"),
    ("lock_wait", "  of which SELECT ... FOR UPDATE"),
    ("commit", "  of which COMMIT/ROLLBACK"),
    ("lock_hold", "row lock held (after FOR UPDATE)"),
    ("held_db", "  of which round trips"),
    ("held_cpu", "  of which thread CPU"),
    ("held_other", "  of which neither (GIL, no core)"),
    ("token", "token lookup (incl. its query)"),
    ("redis", "Redis"),
    ("render", "Ninja response rendering"),
    ("unaccounted", "not running: wall-cpu-db-redis"),
]


def load(directory: str, since: float = 0, until: float = float("inf")) -> list[dict]:
    records = []
    for path in Path(directory).glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if since <= rec.get("t", 0) <= until:
                rec["unaccounted"] = max(0.0, rec["wall"] - rec["cpu"] - rec["db"] - rec.get("redis", 0.0))
                if "lock_hold" in rec:
                    rec["held_other"] = max(0.0, rec["lock_hold"] - rec["held_db"] - rec["held_cpu"])
                records.append(rec)
    return records


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))]


def summarize(records: list[dict], *, min_count: int = 20, prefix: str = "") -> str:
    groups = defaultdict(list)
    for rec in records:
        path = rec["path"]
        if "/bids" in path:
            path = "/api/v1/lots/{id}/bids"
        groups[(rec["method"], path, rec["status"])].append(rec)
    out = []
    for (method, path, status), recs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        if len(recs) < min_count:
            continue
        queries = statistics.mean(r["queries"] for r in recs)
        held = [r["held_queries"] for r in recs if "held_queries" in r]
        held_s = f", {statistics.mean(held):.1f} of them holding the lot's row lock" if held else ""
        out.append(f"{prefix}{method} {path} -> {status}: {len(recs)} requests, {queries:.1f} MariaDB round trips each{held_s}")
        out.append(f"{prefix}  {'':<34} {'mean':>7} {'p50':>7} {'p99':>7}  ms")
        for key, label in FIELDS:
            values = [r[key] * 1000 for r in recs if key in r]
            if not values:
                continue
            out.append(f"{prefix}  {label:<34} {statistics.mean(values):7.2f} {statistics.median(values):7.2f} {pct(values, 99):7.2f}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--since", type=float, default=0)
    parser.add_argument("--until", type=float, default=float("inf"))
    args = parser.parse_args()
    print(summarize(load(args.directory, args.since, args.until)))


if __name__ == "__main__":
    main()
