/** Transports that answer from a script, for what the real server will not do on cue (429, a gap, 4401). */
import type { HttpAnswer, HttpRequest, Socket, SocketEvents, Transport } from "../src";

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpAnswer {
  return { status, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

export class ScriptedHttp implements Transport {
  readonly requests: HttpRequest[] = [];

  constructor(private readonly answers: (HttpAnswer | Error)[]) {}

  async request(request: HttpRequest): Promise<HttpAnswer> {
    this.requests.push(request);
    const answer = this.answers.shift();
    if (!answer) throw new Error(`no scripted answer for ${request.method} ${request.url}`);
    if (answer instanceof Error) throw answer;
    return answer;
  }

  connectSocket(url: string, _headers: Record<string, string>, _events: SocketEvents): Socket {
    throw new Error(`no sockets here (${url})`);
  }

  async requestPayment(): Promise<void> {}
}

export class FakeSocket implements Socket {
  readonly sent: unknown[] = [];
  closed = false;

  constructor(readonly url: string, readonly headers: Record<string, string>, readonly events: SocketEvents) {}

  send(text: string): void {
    this.sent.push(JSON.parse(text));
  }

  close(): void {
    this.closed = true;
  }

  /** The server's side. */
  message(body: object): void {
    this.events.onMessage(JSON.stringify({ server_time: new Date().toISOString(), ...body }));
  }

  drop(code = 1006): void {
    this.events.onClose(code, "");
  }
}

export class FakeSockets extends ScriptedHttp {
  readonly sockets: FakeSocket[] = [];

  constructor(answers: (HttpAnswer | Error)[] = []) {
    super(answers);
  }

  override connectSocket(url: string, headers: Record<string, string>, events: SocketEvents): Socket {
    const socket = new FakeSocket(url, headers, events);
    this.sockets.push(socket);
    queueMicrotask(() => events.onOpen());
    return socket;
  }

  get last(): FakeSocket {
    return this.sockets[this.sockets.length - 1];
  }
}
