/**
 * The live room's messages (CONTRACT "Live updates"). The OpenAPI document
 * describes HTTP only, so these envelopes are written here; every payload in
 * them is a generated type.
 */
import type { Bid, Deposit, ErrorCode, LotDetail, LotSummary, Order } from "./schema";

interface Envelope<T extends string> {
  type: T;
  server_time: string;
}

/** After each `watch`: the lot as `GET /lots/{id}` shows it to this caller, and its version. */
export interface SnapshotMessage extends Envelope<"snapshot"> {
  lot: LotDetail;
  version: number;
}

/** What a `lot` message carries: LotSummary + next_min_bid + reserve_met. */
export type LiveLot = LotSummary & Pick<LotDetail, "next_min_bid" | "reserve_met">;

export interface LotMessage extends Envelope<"lot"> {
  lot: LiveLot;
  version: number;
  /** The version of the message before this one; above the one held: messages were missed. */
  previous_version: number | null;
  /** Accepted since the previous message for this lot, newest first. */
  bids: Bid[];
  committed_at: string | null;
}

export interface OutbidMessage extends Envelope<"outbid"> {
  lot_id: LotSummary["id"];
  price: Bid["price"];
}

export interface WonMessage extends Envelope<"won"> {
  lot_id: LotSummary["id"];
  order_no: Order["order_no"];
}

export interface DepositMessage extends Envelope<"deposit"> {
  deposit: Deposit;
}

export interface OrderMessage extends Envelope<"order"> {
  order: Order;
}

export type PongMessage = Envelope<"pong">;

/** A bad message (the socket stays open), or why the server closes it (`idle`, `unauthenticated`, `throttled`). */
export interface LiveErrorMessage extends Envelope<"error"> {
  code: ErrorCode | "idle" | (string & {});
  message: string;
  lot_id?: LotSummary["id"];
}

export type LiveMessage =
  | SnapshotMessage
  | LotMessage
  | OutbidMessage
  | WonMessage
  | DepositMessage
  | OrderMessage
  | PongMessage
  | LiveErrorMessage;

export type LiveMessageType = LiveMessage["type"];

export type LiveOp = { op: "watch" | "unwatch"; lot_ids: number[] } | { op: "ping" };

/** Close codes the server uses (live/consumer.py). */
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_THROTTLED = 4429;
export const CLOSE_IDLE = 4408;
/** At most this many lots on one socket. */
export const MAX_LOTS_PER_SOCKET = 50;
