/**
 * The demo's auction day through the client, against the real server the run
 * started (global-setup.ts): sandbox logins, deposits paid through the payment
 * layer, bids, the live room, the lot's end settled by the job cluster, a
 * coupon quoted and used, the order paid; refusals as typed errors; and the
 * live room coming back after the server drops its socket.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  ApiError,
  LiveRoom,
  followLot,
  pay,
  type AuctionClient,
  type LiveMessage,
  type LotDetail,
  type LotView,
  type Order,
  type SpecialDetail,
} from "../src";
import { client, endLotIn, restartServer, until } from "./server";

const ADDRESS = { name: "林小雅", phone: "13800000000", region: "上海市", detail: "南京东路 1 号" };

class Recorder {
  readonly messages: LiveMessage[] = [];
  readonly views: LotView[] = [];

  constructor(readonly room: LiveRoom) {
    for (const type of ["snapshot", "lot", "outbid", "won", "deposit", "order", "pong", "error"] as const) {
      room.on(type, (message) => this.messages.push(message));
    }
  }

  of<T extends LiveMessage["type"]>(type: T): Extract<LiveMessage, { type: T }>[] {
    return this.messages.filter((message): message is Extract<LiveMessage, { type: T }> => message.type === type);
  }
}

async function expectApiError(call: Promise<unknown>, status: number, code: string): Promise<ApiError> {
  const error = await call.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ApiError);
  const apiError = error as ApiError;
  expect([apiError.status, apiError.code]).toEqual([status, code]);
  expect(typeof apiError.message).toBe("string");
  return apiError;
}

describe("an auction day (the demo) through the client", () => {
  let alice: AuctionClient;
  let bob: AuctionClient;
  let special: SpecialDetail;
  let lot: LotDetail;
  let aliceLive: Recorder;
  let bobLive: Recorder;
  let alicePrice = 0;
  let secondNextMinBid = 0;
  let order: Order;
  let userCouponId = 0;

  beforeAll(async () => {
    alice = client();
    bob = client();
    await alice.loginSandbox("demo-alice");
    await bob.loginSandbox("demo-bob");
    const bidding = await alice.get("/api/v1/specials", { query: { status: "bidding" } });
    expect(bidding.count).toBeGreaterThan(0);
    special = await alice.get("/api/v1/specials/{special_id}", { path: { special_id: bidding.items[0].id } });
    lot = await alice.get("/api/v1/lots/{lot_id}", { path: { lot_id: special.lots[0].id } });
    aliceLive = new Recorder(new LiveRoom({ client: alice, pingIntervalMs: 2_000 }));
    bobLive = new Recorder(new LiveRoom({ client: bob, pingIntervalMs: 2_000, backoffInitialMs: 200, backoffMaxMs: 2_000 }));
  });

  afterAll(() => {
    aliceLive?.room.close();
    bobLive?.room.close();
  });

  it("logs in with the sandbox and reads the lot with its own view", async () => {
    const me = await bob.get("/api/v1/me");
    expect(me.nickname).toBe("周博文");
    expect(lot.status).toBe("bidding");
    expect(lot.current_price).toBe(0);
    expect(Number.isInteger(lot.next_min_bid)).toBe(true);
    expect(Date.parse(lot.server_time)).not.toBeNaN();
    expect(lot.my).toEqual({ deposit_status: null, leading: false, auto_bid_max: null, barred: false });
  });

  it("watches the lot: the snapshot comes first", async () => {
    followLot(bobLive.room, lot.id, (view) => bobLive.views.push(view));
    aliceLive.room.watch([lot.id]);
    const snapshot = await until("Bob's snapshot", () => bobLive.of("snapshot")[0]);
    expect(snapshot.lot.id).toBe(lot.id);
    expect(snapshot.lot.my?.leading).toBe(false);
    expect(bobLive.room.versionOf(lot.id)).toBe(snapshot.version);
    expect(bobLive.room.clock.isSynced).toBe(true);
    await until("Alice's snapshot", () => aliceLive.of("snapshot")[0]);
  });

  it("pays both deposits through the payment layer (the sandbox stands in for WeChat Pay)", async () => {
    for (const bidder of [alice, bob]) {
      const created = await bidder.call("post", "/api/v1/deposits", { body: { lot_id: lot.id } });
      expect(created.status).toBe(201);
      expect(created.data.deposit).toMatchObject({ lot_id: lot.id, amount: lot.deposit, status: "pending" });
      expect(created.data.payment.params).toMatchObject({ signType: "RSA" });
      const paid = await pay(bidder, created.data.payment, { pollIntervalMs: 200 });
      expect(paid.status).toBe("paid");
      const mine = await bidder.get("/api/v1/deposits", { query: { status: "held" } });
      expect(mine.items.map((deposit) => deposit.id)).toContain(created.data.deposit.id);
    }
    await expectApiError(bob.post("/api/v1/deposits", { body: { lot_id: lot.id } }), 409, "deposit_exists");
  });

  it("bids; the rival's socket shows the new price and its bid, and tells Bob he was outbid", async () => {
    const first = await bob.post("/api/v1/lots/{lot_id}/bids", {
      path: { lot_id: lot.id },
      body: { price: lot.next_min_bid },
      idempotencyKey: `bob-first-${lot.id}`,
    });
    expect(first.bid.price).toBe(lot.next_min_bid);
    const second = await alice.post("/api/v1/lots/{lot_id}/bids", {
      path: { lot_id: lot.id },
      body: { price: first.lot.next_min_bid },
    });
    alicePrice = second.bid.price;
    secondNextMinBid = second.lot.next_min_bid;
    expect(second.lot.current_price).toBe(alicePrice);

    const view = await until("Bob's view at Alice's price", () =>
      bobLive.views.find((seen) => seen.current_price === alicePrice),
    );
    expect(view.next_min_bid).toBe(second.lot.next_min_bid);
    const message = bobLive.of("lot").find((seen) => seen.lot.current_price === alicePrice)!;
    expect(message.version).toBeGreaterThan(0);
    expect(message.bids[0]).toMatchObject({ id: second.bid.id, price: alicePrice, bidder: "林**" });
    const outbid = await until("Bob's outbid message", () => bobLive.of("outbid").find((seen) => seen.lot_id === lot.id));
    expect(outbid.price).toBe(alicePrice);
  });

  it("answers refusals as typed errors with the contract's codes", async () => {
    await expectApiError(
      alice.post("/api/v1/lots/{lot_id}/bids", { path: { lot_id: lot.id }, body: { price: secondNextMinBid } }),
      409,
      "already_leading",
    );
    const tooLow = await expectApiError(
      bob.post("/api/v1/lots/{lot_id}/bids", { path: { lot_id: lot.id }, body: { price: lot.start_price } }),
      409,
      "bid_too_low",
    );
    const shown = await bob.get("/api/v1/lots/{lot_id}", { path: { lot_id: lot.id } });
    expect(tooLow.detail.next_min_bid).toBe(shown.next_min_bid);
    // Money is a JSON integer: the types refuse a string, and so does the server.
    const asText = { price: String(shown.next_min_bid) } as unknown as { price: number };
    const invalid = await expectApiError(
      bob.post("/api/v1/lots/{lot_id}/bids", { path: { lot_id: lot.id }, body: asText }),
      422,
      "validation_error",
    );
    expect(invalid.is("validation_error")).toBe(true);
    await expectApiError(alice.get("/api/v1/orders/{order_no}", { path: { order_no: "20260101NOSUCHORDER0" } }), 404, "not_found");
    await expectApiError(client().get("/api/v1/me"), 401, "unauthenticated");
  });

  it("logs in again once on 401 (one re-login for concurrent requests) and retries", async () => {
    let logins = 0;
    const lapsed: AuctionClient = client({
      token: "a-token-the-server-never-issued",
      onUnauthorized: async () => {
        logins++;
        const fresh = client();
        return (await fresh.loginSandbox("demo-carol")).token;
      },
    });
    const [me, orders] = await Promise.all([lapsed.get("/api/v1/me"), lapsed.get("/api/v1/orders")]);
    expect(me.nickname).toBe("陈可欣");
    expect(Array.isArray(orders.items)).toBe(true);
    expect(logins).toBe(1);
    expect(lapsed.token).not.toBe("a-token-the-server-never-issued");
  });

  it("ends the lot: the job cluster settles it, Alice is told she won, Bob's socket shows it sold", async () => {
    endLotIn(lot.id, 2);
    const won = await until("Alice's won message", () => aliceLive.of("won").find((seen) => seen.lot_id === lot.id), 45_000);
    const sold = await until("Bob's view: sold", () => bobLive.views.find((seen) => seen.status === "sold"), 45_000);
    expect(sold.current_price).toBe(alicePrice);
    const orders = await alice.get("/api/v1/orders", { query: { status: "pending_payment" } });
    order = orders.items.find((item) => item.order_no === won.order_no)!;
    const premium = Math.round((alicePrice * lot.buyer_premium_rate) / 10_000);
    expect(order).toMatchObject({ status: "pending_payment", price: alicePrice, premium, deposit_credit: lot.deposit });
    expect(order.amount_due).toBe(alicePrice + premium - lot.deposit);
    await expectApiError(bob.get("/api/v1/orders/{order_no}", { path: { order_no: order.order_no } }), 404, "not_found");
  });

  it("claims the special's coupon and quotes the order with it", async () => {
    const coupons = await alice.get("/api/v1/coupons");
    const coupon = coupons.items.find((item) => item.special_id === special.id)!;
    expect(coupon.claimed_by_me).toBe(0);
    const claimed = await alice.call("post", "/api/v1/coupons/{coupon_id}/claim", { path: { coupon_id: coupon.id } });
    expect(claimed.status).toBe(201);
    expect(claimed.data.status).toBe("unused");
    userCouponId = claimed.data.id;
    const quote = await alice.post("/api/v1/orders/{order_no}/quote", {
      path: { order_no: order.order_no },
      body: { user_coupon_id: userCouponId },
    });
    expect(quote.coupon_discount).toBe(coupon.amount);
    expect(quote.amount_due).toBe(order.price + order.premium - order.deposit_credit - coupon.amount);
  });

  it("pays the order with the coupon: paid, the deposit applied, the coupon used", async () => {
    const paying = await alice.post("/api/v1/orders/{order_no}/pay", {
      path: { order_no: order.order_no },
      body: { user_coupon_id: userCouponId, address: ADDRESS },
      idempotencyKey: `pay-${order.order_no}`,
    });
    expect(paying.payment).not.toBeNull();
    const paid = await pay(alice, paying.payment!, { pollIntervalMs: 200 });
    expect([paid.purpose, paid.status]).toEqual(["order", "paid"]);
    const shown = await alice.get("/api/v1/orders/{order_no}", { path: { order_no: order.order_no } });
    expect(shown.status).toBe("paid");
    expect(shown.paid_at).not.toBeNull();
    expect(shown.fulfilment?.status).toBe("awaiting_shipment");
    const used = await alice.get("/api/v1/me/coupons", { query: { status: "used" } });
    expect(used.items.map((item) => item.id)).toContain(userCouponId);
    await expectApiError(
      alice.post("/api/v1/orders/{order_no}/pay", { path: { order_no: order.order_no }, body: { address: ADDRESS } }),
      409,
      "order_not_payable",
    );
    await until("Alice's order message: paid", () =>
      aliceLive.of("order").find((seen) => seen.order.order_no === order.order_no && seen.order.status === "paid"),
    );
  });

  it("comes back after the server drops the socket, and watches the lot again", async () => {
    const room = bobLive.room;
    const connections = room.connections;
    const snapshots = bobLive.of("snapshot").length;
    const states: string[] = [];
    room.onState((state) => states.push(state));
    restartServer();
    await until("Bob's socket back", () => room.connections > connections && room.state === "open", 90_000);
    const again = await until("a fresh snapshot after the reconnect", () => bobLive.of("snapshot")[snapshots], 30_000);
    expect(again.lot).toMatchObject({ id: lot.id, status: "sold", current_price: alicePrice });
    expect(states).toContain("reconnecting");
    expect(bobLive.views.at(-1)?.status).toBe("sold");
  });
});
