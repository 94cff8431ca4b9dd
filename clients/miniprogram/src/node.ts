/**
 * The client's transport on Node (tests, scripts): global fetch and the `ws`
 * package. Not part of the mini-program build (tsconfig.build.json leaves it out).
 */
import WebSocket from "ws";

import { NetworkError, PaymentNotCompleted } from "./errors";
import type { Payment, PaymentParams } from "./schema";
import type { Socket, SocketEvents, Transport } from "./transport";

export interface NodeTransportOptions {
  /** Stands in for WeChat Pay's sheet (there is none on Node), e.g. the sandbox's succeed endpoint. */
  requestPayment?: (params: PaymentParams, payment: Payment) => Promise<void>;
}

export function nodeTransport(options: NodeTransportOptions = {}): Transport {
  return {
    async request(request) {
      let response: Response;
      try {
        response = await fetch(request.url, {
          method: request.method,
          headers: request.headers,
          body: request.body,
          signal: AbortSignal.timeout(request.timeoutMs),
        });
      } catch (error) {
        throw new NetworkError(error instanceof Error ? error.message : String(error), request.method, request.url);
      }
      const headers: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        headers[name.toLowerCase()] = value;
      });
      return { status: response.status, headers, body: await response.text() };
    },

    connectSocket(url: string, headers: Record<string, string>, events: SocketEvents): Socket {
      const socket = new WebSocket(url, { headers });
      socket.on("open", () => events.onOpen());
      socket.on("message", (data) => events.onMessage(data.toString()));
      socket.on("close", (code, reason) => events.onClose(code, reason.toString()));
      socket.on("error", (error) => events.onError(error.message));
      return {
        send: (text) => socket.send(text),
        close: (code, reason) => {
          if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
          else socket.close(code, reason);
        },
      };
    },

    async requestPayment(params, payment) {
      if (!options.requestPayment) throw new PaymentNotCompleted("no payment sheet on Node", false);
      await options.requestPayment(params, payment);
    },
  };
}
