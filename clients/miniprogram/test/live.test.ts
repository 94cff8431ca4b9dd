/** The live room's rules on a scripted socket: re-watch after a reconnect, a snapshot after a gap, re-login on 4401. */
import { describe, expect, it } from "vitest";

import { AuctionClient, CLOSE_UNAUTHENTICATED, LiveRoom } from "../src";
import { FakeSockets } from "./fakes";
import { until } from "./server";

const LOT = { id: 7, special_id: 1, title: "t", cover: null, status: "bidding", start_price: 100, current_price: 0,
  bid_count: 0, ends_at: "2026-12-02T10:00:00+08:00", next_min_bid: 100, reserve_met: true };

function room(options: { onUnauthorized?: () => Promise<string | null> } = {}) {
  const transport = new FakeSockets();
  const client = new AuctionClient({ baseUrl: "https://api.test", transport, token: "t0", ...options });
  const live = new LiveRoom({ client, backoffInitialMs: 5, backoffMaxMs: 20, pingIntervalMs: 60_000 });
  return { transport, client, live };
}

describe("the live room", () => {
  it("connects to /ws/v1/live with the token, watches, and watches everything again after a drop", async () => {
    const { transport, live } = room();
    live.watch([7, 8]);
    await until("open", () => live.state === "open");
    expect(transport.last.url).toBe("wss://api.test/ws/v1/live");
    expect(transport.last.headers).toEqual({ Authorization: "Bearer t0" });
    expect(transport.last.sent).toEqual([{ op: "watch", lot_ids: [7, 8] }]);
    live.unwatch([8]);
    transport.last.drop();
    await until("a second socket", () => transport.sockets.length === 2 && live.state === "open");
    expect(transport.last.sent).toEqual([{ op: "watch", lot_ids: [7] }]);
    live.close();
  });

  it("asks for a snapshot when a version was skipped, and drops what is older than it holds", async () => {
    const { transport, live } = room();
    const prices: number[] = [];
    live.on("lot", (message) => prices.push(message.lot.current_price));
    live.watch([7]);
    await until("open", () => live.state === "open");
    const socket = transport.last;
    socket.message({ type: "snapshot", lot: { ...LOT }, version: 3 });
    socket.message({ type: "lot", lot: { ...LOT, current_price: 100 }, version: 4, previous_version: 3, bids: [], committed_at: null });
    expect(socket.sent).toEqual([{ op: "watch", lot_ids: [7] }]);
    socket.message({ type: "lot", lot: { ...LOT, current_price: 300 }, version: 9, previous_version: 6, bids: [], committed_at: null });
    expect(socket.sent).toEqual([{ op: "watch", lot_ids: [7] }, { op: "watch", lot_ids: [7] }]);
    socket.message({ type: "lot", lot: { ...LOT, current_price: 200 }, version: 5, previous_version: 4, bids: [], committed_at: null });
    expect(prices).toEqual([100, 300]);
    expect(live.versionOf(7)).toBe(9);
    live.close();
  });

  it("logs in again when the socket's token is refused (4401) and connects with the new one", async () => {
    const { transport, live } = room({ onUnauthorized: async () => "t1" });
    live.watch([7]);
    await until("open", () => live.state === "open");
    transport.last.drop(CLOSE_UNAUTHENTICATED);
    await until("a socket with the new token", () => transport.last.headers.Authorization === "Bearer t1" && live.state === "open");
    live.close();
    expect(live.state).toBe("closed");
  });
});
