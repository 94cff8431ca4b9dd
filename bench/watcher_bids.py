"""The bidder of bench/watchers.py: open-loop bids over HTTP, in a process of its own."""

import asyncio
import json
import random
import time

from lean_clients import LeanHTTP


async def bid_for(seconds: float, rate: float, base: str, lot_ids: list[int], tokens: list[str],
                  current: dict[int, tuple[int, int]]) -> dict:
    """Open loop: ``rate`` bids a second, each at the lot's next price as this bidder
    last learnt it plus one step per bid sent since (a fixed step of 1,000 fen), so a
    bid is valid when sent and is refused only when overtaken in flight."""
    accepted = refused = failed = 0
    statuses: dict = {}
    latencies: list[float] = []
    prices = {lot_id: price + 1000 for lot_id, (price, _) in current.items()}
    client = LeanHTTP(base + "/api/v1", 64)
    pending: set[asyncio.Task] = set()

    async def one(lot_id: int, token: str) -> None:
        nonlocal accepted, refused, failed
        price = prices[lot_id]
        prices[lot_id] = price + 1000
        sent_at = time.monotonic()
        try:
            status, answer = await client.post_json(f"/lots/{lot_id}/bids", {"price": price}, token)
            latencies.append(time.monotonic() - sent_at)
            if status == 201:
                accepted += 1
            elif status == 409:
                refused += 1
                body = json.loads(answer)
                statuses[body.get("code")] = statuses.get(body.get("code"), 0) + 1
                detail = body.get("detail") or {}
                if "next_min_bid" in detail:
                    prices[lot_id] = max(prices[lot_id], detail["next_min_bid"])
            else:
                failed += 1
                statuses[status] = statuses.get(status, 0) + 1
        except Exception as exc:  # noqa: BLE001
            failed += 1
            statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1

    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            task = asyncio.create_task(one(random.choice(lot_ids), random.choice(tokens)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(0.005)
    if pending:
        await asyncio.wait(pending, timeout=30)
    elapsed = time.monotonic() - started
    client.close()
    latencies.sort()
    at = lambda q: round(latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000, 1) if latencies else None  # noqa: E731
    return {"accepted_per_s": accepted / elapsed, "accepted": accepted, "refused": refused, "failed": failed, "sent": sent,
            "other_answers": statuses, "bid_p50_ms": at(0.5), "bid_p99_ms": at(0.99)}


def final_states(lot_ids: list[int]) -> dict[int, tuple[int, int]]:
    from django.db import close_old_connections

    from auction.models import Lot

    close_old_connections()
    return {lot_id: (price, version) for lot_id, price, version in
            Lot.objects.filter(pk__in=lot_ids).values_list("pk", "current_price", "version")}


# The watchers and the bidder live in processes of their own: in one asyncio loop
# with 5,000 sockets the bidder itself was starved (100 bids/s offered, 20 sent)
# and every latency carried the loop's own lag.


def bidder_process(conn, seconds: float, rate: float, base: str, lot_ids: list[int], tokens: list[str]) -> None:
    import django

    django.setup()  # the lots' prices to start from
    try:
        current = final_states(lot_ids)
        started = time.process_time()
        result = asyncio.run(bid_for(seconds, rate, base, lot_ids, tokens, current))
        conn.send({**result, "cpu_s": time.process_time() - started})
    except BaseException as exc:
        conn.send({"error": repr(exc)})
        raise


async def bids_elsewhere(seconds: float, rate: float, base: str, lot_ids: list[int], tokens: list[str]) -> dict:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=bidder_process, args=(child, seconds, rate, base, lot_ids, tokens), daemon=True)
    process.start()
    result = await asyncio.to_thread(parent.recv)
    process.join(timeout=10)
    if "error" in result:
        raise RuntimeError(f"the bidder failed: {result['error']}")
    return result
