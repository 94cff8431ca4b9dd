import type { AuctionClient } from "./client";
import { ApiError } from "./errors";
import { ServerClock } from "./clock";
import {
  CLOSE_THROTTLED,
  CLOSE_UNAUTHENTICATED,
  MAX_LOTS_PER_SOCKET,
  type LiveLot,
  type LiveMessage,
  type LiveMessageType,
  type LiveOp,
  type LotMessage,
} from "./live-messages";
import type { LotDetail } from "./schema";
import type { Socket } from "./transport";

export type LiveState = "connecting" | "open" | "reconnecting" | "closed";

export interface LiveRoomOptions {
  /** The client whose base URL, transport, token and re-login the room shares. */
  client: AuctionClient;
  /** Default: the client's base URL with ws(s):// and /ws/v1/live. */
  url?: string;
  /** The server closes a socket it has heard nothing from for 60 s. */
  pingIntervalMs?: number;
  /** No message this long after a ping: the socket is dead (a phone changing networks), connect again. */
  pongTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  random?: () => number;
}

type Listener<T extends LiveMessageType> = (message: Extract<LiveMessage, { type: T }>) => void;

/**
 * One socket on `/ws/v1/live` for many lots. It watches again whatever it
 * watched after each reconnect (backoff with jitter), asks for a fresh
 * snapshot when a `lot` message shows a version gap, and pings.
 */
export class LiveRoom {
  readonly clock = new ServerClock();
  private readonly watched = new Set<number>();
  private readonly versions = new Map<number, number>();
  private readonly listeners = new Map<string, Set<(message: never) => void>>();
  private readonly stateListeners = new Set<(state: LiveState) => void>();
  private socket: Socket | null = null;
  private generation = 0;
  private attempts = 0;
  private stopped = true;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private currentState: LiveState = "closed";
  /** Connections opened so far (the first one included). */
  connections = 0;

  constructor(private readonly options: LiveRoomOptions) {}

  get state(): LiveState {
    return this.currentState;
  }

  get url(): string {
    return this.options.url ?? `${this.options.client.baseUrl.replace(/^http/, "ws")}/ws/v1/live`;
  }

  on<T extends LiveMessageType>(type: T, listener: Listener<T>): () => void {
    const set = this.listeners.get(type) ?? new Set();
    this.listeners.set(type, set);
    set.add(listener as (message: never) => void);
    return () => set.delete(listener as (message: never) => void);
  }

  onState(listener: (state: LiveState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  connect(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  close(): void {
    this.stopped = true;
    this.clearTimers();
    this.generation++;
    this.socket?.close(1000, "bye");
    this.socket = null;
    this.setState("closed");
  }

  watch(lotIds: number[]): void {
    const added = lotIds.filter((id) => !this.watched.has(id));
    if (this.watched.size + added.length > MAX_LOTS_PER_SOCKET) {
      throw new RangeError(`one socket watches at most ${MAX_LOTS_PER_SOCKET} lots`);
    }
    added.forEach((id) => this.watched.add(id));
    if (added.length) this.send({ op: "watch", lot_ids: added });
    if (this.stopped) this.connect();
  }

  unwatch(lotIds: number[]): void {
    const dropped = lotIds.filter((id) => this.watched.delete(id));
    dropped.forEach((id) => this.versions.delete(id));
    if (dropped.length) this.send({ op: "unwatch", lot_ids: dropped });
  }

  /** The version of the newest state seen for a lot. */
  versionOf(lotId: number): number | undefined {
    return this.versions.get(lotId);
  }

  private open(): void {
    const generation = ++this.generation;
    this.setState(this.connections ? "reconnecting" : "connecting");
    const token = this.options.client.token;
    const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    const current = () => generation === this.generation;
    try {
      this.socket = this.options.client.transport.connectSocket(this.url, headers, {
        onOpen: () => {
          if (!current()) return;
          this.connections++;
          this.setState("open");
          if (this.watched.size) this.send({ op: "watch", lot_ids: [...this.watched] });
          this.startPing();
        },
        onMessage: (text) => current() && this.receive(text),
        onClose: (code) => current() && this.lost(code),
        onError: () => current() && this.lost(0),
      });
    } catch {
      this.lost(0); // e.g. too many sockets open in the mini-program: try again later
    }
  }

  private receive(text: string): void {
    let message: LiveMessage;
    try {
      message = JSON.parse(text) as LiveMessage;
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null || typeof message.type !== "string") return;
    // Any message shows the socket alive; a snapshot or pong shows the server serving it.
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = null;
    this.attempts = 0;
    if (message.server_time) this.clock.sync(message.server_time);
    if (message.type === "snapshot") {
      this.versions.set(message.lot.id, message.version);
    } else if (message.type === "lot") {
      if (!this.acceptLot(message)) return;
    }
    this.listeners.get(message.type)?.forEach((listener) => listener(message as never));
  }

  /** false: older than what is held. A gap (missed messages) asks for a snapshot. */
  private acceptLot(message: LotMessage): boolean {
    const lotId = message.lot.id;
    if (!this.watched.has(lotId)) return false;
    const held = this.versions.get(lotId);
    if (held !== undefined && message.version < held) return false;
    if (held !== undefined && message.previous_version !== null && message.previous_version > held) {
      this.send({ op: "watch", lot_ids: [lotId] });
    }
    this.versions.set(lotId, message.version);
    return true;
  }

  private lost(code: number): void {
    this.clearTimers();
    this.socket = null;
    this.generation++;
    if (this.stopped) return;
    this.setState("reconnecting");
    if (code === CLOSE_UNAUTHENTICATED) {
      // The token was refused: log in again (the client's hook), else watch anonymously.
      const error = new ApiError(401, { code: "unauthenticated", message: "the live room refused the token", detail: {} });
      this.options.client
        .reauthenticate(error)
        .then((token) => {
          if (!token) this.options.client.setToken(null);
        })
        .catch(() => this.options.client.setToken(null))
        .finally(() => this.retryLater(code));
      return;
    }
    this.retryLater(code);
  }

  private retryLater(code: number): void {
    if (this.stopped) return;
    this.attempts++;
    const initial = this.options.backoffInitialMs ?? 500;
    const max = this.options.backoffMaxMs ?? 30_000;
    let delay = Math.min(max, initial * 2 ** (this.attempts - 1));
    if (code === CLOSE_THROTTLED) delay = Math.max(delay, Math.min(max, 5_000));
    delay *= 0.5 + (this.options.random ?? Math.random)() * 0.5;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, delay);
  }

  private startPing(): void {
    const every = this.options.pingIntervalMs ?? 25_000;
    this.pingTimer = setInterval(() => {
      this.send({ op: "ping" });
      if (this.pongTimer) return;
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        const socket = this.socket;
        this.lost(0);
        socket?.close(4000, "no answer to ping");
      }, this.options.pongTimeoutMs ?? 10_000);
    }, every);
  }

  private send(op: LiveOp): void {
    if (this.currentState === "open" && this.socket) this.socket.send(JSON.stringify(op));
  }

  private clearTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pongTimer) clearTimeout(this.pongTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.pingTimer = this.pongTimer = this.retryTimer = null;
  }

  private setState(state: LiveState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.stateListeners.forEach((listener) => listener(state));
  }
}

/** A lot page's state: the snapshot's detail with each `lot` message's newer fields over it. */
export type LotView = LotDetail & LiveLot;

/**
 * Follow one lot: `listener` gets the lot after its snapshot and after each
 * change (with the bids the change brought). Returns what stops it.
 */
export function followLot(
  room: LiveRoom,
  lotId: number,
  listener: (lot: LotView, newBids: LotMessage["bids"]) => void,
): () => void {
  let view: LotView | null = null;
  const stops = [
    room.on("snapshot", (message) => {
      if (message.lot.id !== lotId) return;
      view = message.lot;
      listener(view, []);
    }),
    room.on("lot", (message) => {
      if (message.lot.id !== lotId || !view) return;
      view = { ...view, ...message.lot };
      listener(view, message.bids);
    }),
  ];
  room.watch([lotId]);
  return () => {
    stops.forEach((stop) => stop());
    room.unwatch([lotId]);
  };
}
