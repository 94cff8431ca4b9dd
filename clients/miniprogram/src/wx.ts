import { NetworkError, PaymentNotCompleted } from "./errors";
import type { PaymentParams } from "./schema";
import { lowerCaseKeys, type Socket, type SocketEvents, type Transport } from "./transport";

/**
 * The part of the mini-program's `wx` this client calls; the real `wx`
 * (miniprogram-api-typings' WechatMiniprogram.Wx) fits it.
 */
export interface WxLike {
  request(option: {
    url: string;
    method?: string;
    data?: string;
    header?: Record<string, string>;
    timeout?: number;
    dataType?: string;
    responseType?: string;
    success?: (result: { statusCode: number; data: unknown; header: Record<string, string> }) => void;
    fail?: (error: { errMsg: string }) => void;
  }): unknown;
  connectSocket(option: { url: string; header?: Record<string, string> }): WxSocketTask;
  requestPayment(option: PaymentParams & {
    success?: () => void;
    fail?: (error: { errMsg: string }) => void;
  }): unknown;
}

export interface WxSocketTask {
  send(option: { data: string }): void;
  close(option: { code?: number; reason?: string }): void;
  onOpen(callback: () => void): void;
  onMessage(callback: (result: { data: string | ArrayBuffer }) => void): void;
  onClose(callback: (result: { code: number; reason: string }) => void): void;
  onError(callback: (result: { errMsg: string }) => void): void;
}

/** The client's transport in a mini-program: `wxTransport(wx)`. */
export function wxTransport(wx: WxLike): Transport {
  return {
    request: (request) =>
      new Promise((resolve, reject) => {
        wx.request({
          url: request.url,
          method: request.method,
          data: request.body,
          header: request.headers,
          timeout: request.timeoutMs,
          // The body as text: JSON is parsed by the client, the same on every platform.
          dataType: "text",
          responseType: "text",
          success: (result) =>
            resolve({
              status: result.statusCode,
              headers: lowerCaseKeys(result.header ?? {}),
              body: typeof result.data === "string" ? result.data : JSON.stringify(result.data ?? ""),
            }),
          fail: (error) => reject(new NetworkError(error.errMsg, request.method, request.url)),
        });
      }),

    connectSocket(url: string, headers: Record<string, string>, events: SocketEvents): Socket {
      const task = wx.connectSocket({ url, header: headers });
      task.onOpen(() => events.onOpen());
      task.onMessage(({ data }) => events.onMessage(typeof data === "string" ? data : utf8(data)));
      task.onClose(({ code, reason }) => events.onClose(code, reason));
      task.onError(({ errMsg }) => events.onError(errMsg));
      return {
        send: (text) => task.send({ data: text }),
        close: (code, reason) => task.close({ code, reason }),
      };
    },

    requestPayment: (params) =>
      new Promise<void>((resolve, reject) => {
        wx.requestPayment({
          ...params,
          success: () => resolve(),
          fail: (error) =>
            reject(new PaymentNotCompleted(error.errMsg, /cancel/.test(error.errMsg))),
        });
      }),
  };
}

function utf8(buffer: ArrayBuffer): string {
  // The server sends text frames; a binary one is decoded rather than dropped.
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return decodeURIComponent(escape(text));
}
