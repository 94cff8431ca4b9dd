import { ApiError, NetworkError, isErrorBody } from "./errors";
import type { paths } from "./schema";
import type { HttpAnswer, Transport } from "./transport";

// --- types from the generated `paths`: which path takes which method, parameters, body and answer ---

export type Method = "get" | "post" | "put" | "delete";
/** The paths that have an operation for `M`. */
export type PathsFor<M extends Method> = {
  [P in keyof paths]: paths[P] extends { [K in M]: object } ? P : never;
}[keyof paths] &
  keyof paths;
export type OperationOf<P extends keyof paths, M extends Method> = Exclude<paths[P][M], undefined>;

type ParametersOf<O> = O extends { parameters: infer X } ? X : never;
type PathInit<O> = ParametersOf<O> extends { path: infer X } ? { path: X } : { path?: undefined };
type QueryInit<O> = ParametersOf<O> extends { query?: infer X }
  ? [Exclude<X, undefined>] extends [never]
    ? { query?: undefined }
    : { query?: Exclude<X, undefined> }
  : { query?: undefined };
type BodyInit<O> = O extends { requestBody: { content: { "application/json": infer B } } } ? { body: B } : { body?: undefined };
type Responses<O> = O extends { responses: infer R } ? R : never;
type JsonOf<R> = R extends { content: { "application/json": infer B } } ? B : undefined;
type SuccessStatus = 200 | 201 | 202 | 204;
/** The body of the operation's 2xx answers (undefined for 204). */
export type DataOf<O> = {
  [S in keyof Responses<O>]: S extends SuccessStatus ? JsonOf<Responses<O>[S]> : never;
}[keyof Responses<O>];

export interface CallOptions {
  headers?: Record<string, string>;
  /** Sent as `Idempotency-Key` (CONTRACT Conventions): a retry with it is answered, never done twice. */
  idempotencyKey?: string;
  /** false: send no token, and a 401 is the answer (the login calls). */
  auth?: boolean;
}
export type Init<O> = PathInit<O> & QueryInit<O> & BodyInit<O> & CallOptions;
/** What every Init is at run time. */
interface RawInit extends CallOptions {
  path?: Record<string, unknown>;
  query?: unknown;
  body?: unknown;
}
type RequiredKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T];
type InitArgs<O> = [RequiredKeys<Init<O>>] extends [never] ? [init?: Init<O>] : [init: Init<O>];

export interface Answer<T> {
  status: number;
  data: T;
  headers: Record<string, string>;
}

// --- the client ---

export interface ClientOptions {
  /** Origin of the API, e.g. `https://auction.example.com` (paths carry `/api/v1`). */
  baseUrl: string;
  transport: Transport;
  token?: string | null;
  /** Called when the token changes (login, re-login, logout): keep it, e.g. wx.setStorageSync. */
  onToken?: (token: string | null) => void;
  /**
   * A 401 `unauthenticated`: log in again (wx.login → POST /auth/wechat) and
   * return the new token; the request is then sent once more. null: give up.
   */
  onUnauthorized?: (error: ApiError) => Promise<string | null>;
  /** 429 and 503 with Retry-After: how often to wait and retry, and the longest wait taken. */
  maxRetries?: number;
  maxRetryAfterSeconds?: number;
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const IDEMPOTENT_METHODS = new Set(["GET", "PUT", "DELETE"]);

export class AuctionClient {
  readonly baseUrl: string;
  readonly transport: Transport;
  private currentToken: string | null;
  private relogin: Promise<string | null> | null = null;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.transport = options.transport;
    this.currentToken = options.token ?? null;
  }

  get token(): string | null {
    return this.currentToken;
  }

  setToken(token: string | null): void {
    this.currentToken = token;
    this.options.onToken?.(token);
  }

  get<P extends PathsFor<"get">>(path: P, ...init: InitArgs<OperationOf<P, "get">>) {
    return this.data<OperationOf<P, "get">>("GET", path, init[0]);
  }

  post<P extends PathsFor<"post">>(path: P, ...init: InitArgs<OperationOf<P, "post">>) {
    return this.data<OperationOf<P, "post">>("POST", path, init[0]);
  }

  put<P extends PathsFor<"put">>(path: P, ...init: InitArgs<OperationOf<P, "put">>) {
    return this.data<OperationOf<P, "put">>("PUT", path, init[0]);
  }

  delete<P extends PathsFor<"delete">>(path: P, ...init: InitArgs<OperationOf<P, "delete">>) {
    return this.data<OperationOf<P, "delete">>("DELETE", path, init[0]);
  }

  /** The whole answer (status and headers too): `POST /deposits` is 201 when new, 200 when pending already. */
  call<M extends Method, P extends PathsFor<M>>(
    method: M,
    path: P,
    ...init: InitArgs<OperationOf<P, M>>
  ): Promise<Answer<DataOf<OperationOf<P, M>>>> {
    return this.send(method.toUpperCase(), path, init[0] as unknown as RawInit | undefined) as Promise<
      Answer<DataOf<OperationOf<P, M>>>
    >;
  }

  /** POST /auth/sandbox (the sandbox only) and keep the token. */
  async loginSandbox(openid: string, nickname?: string) {
    const login = await this.post("/api/v1/auth/sandbox", { body: { openid, nickname }, auth: false });
    this.setToken(login.token);
    return login;
  }

  /** POST /auth/wechat with a `wx.login()` code and keep the token. */
  async loginWechat(code: string) {
    const login = await this.post("/api/v1/auth/wechat", { body: { code }, auth: false });
    this.setToken(login.token);
    return login;
  }

  async logout(): Promise<void> {
    await this.post("/api/v1/auth/logout");
    this.setToken(null);
  }

  /** The shared re-login: concurrent 401s wait for one onUnauthorized, not one each. */
  reauthenticate(error: ApiError): Promise<string | null> {
    const hook = this.options.onUnauthorized;
    if (!hook) return Promise.resolve(null);
    if (!this.relogin) {
      this.relogin = hook(error)
        .then((token) => {
          this.setToken(token);
          return token;
        })
        .finally(() => {
          this.relogin = null;
        });
    }
    return this.relogin;
  }

  private async data<O>(method: string, path: string, init: unknown): Promise<DataOf<O>> {
    const answer = await this.send(method, path, init as RawInit | undefined);
    return answer.data as DataOf<O>;
  }

  private async send(method: string, path: string, init: RawInit = {}): Promise<Answer<unknown>> {
    const url = this.baseUrl + fillPath(path, init.path) + queryString(init.query);
    const maxRetries = this.options.maxRetries ?? 2;
    const maxWait = this.options.maxRetryAfterSeconds ?? 10;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { Accept: "application/json", ...init.headers };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (init.idempotencyKey) headers["Idempotency-Key"] = init.idempotencyKey;
      const token = init.auth === false ? null : this.currentToken;
      if (token) headers.Authorization = `Bearer ${token}`;
      const sentToken = token;
      let answer: HttpAnswer;
      try {
        answer = await this.transport.request({ method, url, headers, body, timeoutMs: this.options.timeoutMs ?? 15_000 });
      } catch (error) {
        throw error instanceof NetworkError ? error : new NetworkError(String(error), method, url);
      }
      if (answer.status >= 200 && answer.status < 300) {
        return { status: answer.status, headers: answer.headers, data: parse(answer.body) };
      }
      const error = toError(answer, method, url);
      if (error.status === 401 && error.code === "unauthenticated" && init.auth !== false && !reauthenticated) {
        reauthenticated = true;
        // Another request logged in again while this one was out: its token will do.
        if (this.currentToken && this.currentToken !== sentToken) continue;
        if (await this.reauthenticate(error)) continue;
        throw error;
      }
      // 429 is refused before anything is done; a 503 only where a retry cannot do a thing twice.
      const retryable =
        error.status === 429 ||
        (error.status === 503 && (IDEMPOTENT_METHODS.has(method) || Boolean(init.idempotencyKey)));
      if (retryable && error.retryAfter !== null && error.retryAfter <= maxWait && attempt < maxRetries) {
        await sleep(error.retryAfter * 1000);
        continue;
      }
      throw error;
    }
  }
}

function parse(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toError(answer: HttpAnswer, method: string, url: string): ApiError {
  const body = parse(answer.body);
  const header = answer.headers["retry-after"];
  let retryAfter = header !== undefined && /^\d+$/.test(header.trim()) ? Number(header) : null;
  if (isErrorBody(body)) {
    const detail = body.detail as { retry_after?: unknown } | undefined;
    if (retryAfter === null && typeof detail?.retry_after === "number") retryAfter = detail.retry_after;
    return new ApiError(answer.status, body, retryAfter, method, url);
  }
  // Not the contract's shape: something in between (a proxy) answered.
  const message = `HTTP ${answer.status} without the API's error body`;
  return new ApiError(answer.status, { code: "invalid_response", message, detail: { body: answer.body.slice(0, 200) } }, retryAfter, method, url);
}

function fillPath(path: string, values: Record<string, unknown> | undefined): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values?.[name];
    if (value === undefined || value === null) throw new TypeError(`${path}: no value for {${name}}`);
    return encodeURIComponent(String(value));
  });
}

function queryString(query: unknown): string {
  if (!query || typeof query !== "object") return "";
  const parts: string[] = [];
  for (const [name, value] of Object.entries(query as Record<string, unknown>)) {
    if (value === undefined || value === null) continue;
    parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}
