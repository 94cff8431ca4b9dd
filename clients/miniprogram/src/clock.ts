/**
 * The server's clock, from the `server_time` of every answer and live message:
 * a countdown on the phone's own clock is off by as much as the phone is.
 */
export class ServerClock {
  private offsetMs = 0;
  private synced = false;

  constructor(private readonly localNow: () => number = Date.now) {}

  /** Call with each `server_time` seen (GET /lots/{id}, every live message). */
  sync(serverTime: string): void {
    const server = Date.parse(serverTime);
    if (Number.isNaN(server)) return;
    this.offsetMs = server - this.localNow();
    this.synced = true;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  now(): number {
    return this.localNow() + this.offsetMs;
  }

  /** Milliseconds until `isoTime` (e.g. a lot's `ends_at`) by the server's clock; 0 once past. */
  remainingMs(isoTime: string): number {
    return Math.max(0, Date.parse(isoTime) - this.now());
  }
}

/** 01:02:03 (or 02:03 under an hour) for a countdown label. */
export function formatCountdown(ms: number): string {
  const total = Math.ceil(ms / 1000);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (value: number) => String(value).padStart(2, "0");
  return hours ? `${hours}:${two(minutes)}:${two(seconds)}` : `${two(minutes)}:${two(seconds)}`;
}
