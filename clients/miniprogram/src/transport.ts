import type { Payment, PaymentParams } from "./schema";

/** One HTTP exchange, as both wx.request and fetch can make it. Header names of the answer are lower case. */
export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface SocketEvents {
  onOpen(): void;
  onMessage(text: string): void;
  onClose(code: number, reason: string): void;
  onError(message: string): void;
}

export interface Socket {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * What the client needs from its platform: wx (src/wx.ts) in the mini-program,
 * fetch and `ws` (src/node.ts) on Node for tests.
 */
export interface Transport {
  /** Resolves with any answer, 4xx and 5xx included; rejects (NetworkError) only when none came. */
  request(request: HttpRequest): Promise<HttpAnswer>;
  connectSocket(url: string, headers: Record<string, string>, events: SocketEvents): Socket;
  /** Hands `params` to the platform's payment sheet; resolves once the user has paid there. */
  requestPayment(params: PaymentParams, payment: Payment): Promise<void>;
}

export function lowerCaseKeys(headers: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name.toLowerCase()] = String(value);
  }
  return out;
}
