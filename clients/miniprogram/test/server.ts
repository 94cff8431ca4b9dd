/** The test server (global-setup.ts) and clients on it. */
import { spawnSync } from "node:child_process";
import { inject } from "vitest";

import { AuctionClient, type ClientOptions } from "../src";
import { nodeTransport } from "../src/node";

export const server = inject("server");

/** A client on the test server whose "payment sheet" is the sandbox paying at once. */
export function client(options: Partial<ClientOptions> = {}): AuctionClient {
  let self: AuctionClient;
  const transport = nodeTransport({
    requestPayment: async (_params, payment) => {
      await self.post("/api/v1/payments/sandbox/{out_trade_no}/succeed", {
        path: { out_trade_no: payment.out_trade_no },
      });
    },
  });
  self = new AuctionClient({ baseUrl: server.url, transport, ...options });
  return self;
}

/** The lot ends `seconds` from now (serve_for_tests.py end-lot). */
export function endLotIn(lotId: number, seconds: number): void {
  const result = spawnSync(server.python, [server.script, "end-lot", String(lotId), String(seconds)], {
    env: server.env,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.status !== 0) throw new Error(`end-lot failed: ${result.stderr}${result.stdout}`);
}

/** SIGUSR1: the server kills uvicorn and starts it again; every socket drops. */
export function restartServer(): void {
  process.kill(server.pid, "SIGUSR1");
}

export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as T;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s (server logs: ${server.logs})`);
    await new Promise((done) => setTimeout(done, 200));
  }
}
