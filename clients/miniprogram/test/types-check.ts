/**
 * Compiled by `npm run typecheck`, never run: each `@ts-expect-error` must be an
 * error, so the request layer's types keep refusing what the API refuses.
 */
import type { AuctionClient, ErrorCode, LotStatus } from "../src";

export async function typing(api: AuctionClient): Promise<void> {
  const placed = await api.post("/api/v1/lots/{lot_id}/bids", { path: { lot_id: 1 }, body: { price: 100 } });
  const price: number = placed.lot.current_price;
  // @ts-expect-error money is an integer, never a string
  await api.post("/api/v1/lots/{lot_id}/bids", { path: { lot_id: 1 }, body: { price: "100" } });
  // @ts-expect-error the path's value is required
  await api.post("/api/v1/lots/{lot_id}/bids", { body: { price: 100 } });
  // @ts-expect-error no such path
  await api.get("/api/v1/lots");
  // @ts-expect-error no GET on this path
  await api.get("/api/v1/auth/logout");
  // @ts-expect-error status filters take the contract's values only
  await api.get("/api/v1/orders", { query: { status: "shipped" } });
  const status: LotStatus = (await api.get("/api/v1/lots/{lot_id}", { path: { lot_id: 1 } })).status;
  // @ts-expect-error an unknown code is no ErrorCode
  const code: ErrorCode = "bid_too_high";
  const deleted: undefined = await api.delete("/api/v1/lots/{lot_id}/auto-bid", { path: { lot_id: 1 } });
  void [price, status, code, deleted];
}
