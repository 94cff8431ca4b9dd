"""Watch lots over the live socket and print every message (README, "The live room").

    .venv/bin/python scripts/live_watch.py LOT_ID [LOT_ID ...] [--token TOKEN] [--url ws://127.0.0.1:8000/ws/v1/live]
"""

import argparse
import asyncio
import json

from websockets.asyncio.client import connect


async def watch(url: str, lot_ids: list[int], token: str | None, seconds: float | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with connect(url, additional_headers=headers, proxy=None) as socket:
        await socket.send(json.dumps({"op": "watch", "lot_ids": lot_ids}))

        async def keep_alive() -> None:
            while True:  # the server closes a socket silent for 60 s
                await asyncio.sleep(30)
                await socket.send(json.dumps({"op": "ping"}))

        pinger = asyncio.create_task(keep_alive())
        try:
            async with asyncio.timeout(seconds):
                async for text in socket:
                    print(text, flush=True)
        except TimeoutError:
            pass
        finally:
            pinger.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lot_ids", nargs="+", type=int)
    parser.add_argument("--token")
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/v1/live")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    arguments = parser.parse_args()
    try:
        asyncio.run(watch(arguments.url, arguments.lot_ids, arguments.token, arguments.seconds))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
