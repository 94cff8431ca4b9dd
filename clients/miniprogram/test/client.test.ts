/** The request layer's rules that the real server will not show on cue: 429 and 503 retries, odd answers. */
import { describe, expect, it } from "vitest";

import { ApiError, AuctionClient, NetworkError } from "../src";
import { ScriptedHttp, json } from "./fakes";

const THROTTLED = { code: "throttled", message: "Too many requests; slow down.", detail: { retry_after: 1 } };
const SPECIALS = { items: [], count: 0 };

function scripted(answers: ConstructorParameters<typeof ScriptedHttp>[0], options = {}) {
  const transport = new ScriptedHttp(answers);
  const waits: number[] = [];
  const client = new AuctionClient({
    baseUrl: "http://api.test/",
    transport,
    token: "t0",
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...options,
  });
  return { client, transport, waits };
}

describe("the request layer", () => {
  it("sends the token, the path's values and the query", async () => {
    const { client, transport } = scripted([json(200, SPECIALS)]);
    await client.get("/api/v1/specials", { query: { status: "bidding", limit: 5 } });
    expect(transport.requests[0]).toMatchObject({
      method: "GET",
      url: "http://api.test/api/v1/specials?status=bidding&limit=5",
      headers: { Authorization: "Bearer t0" },
    });
  });

  it("waits Retry-After on 429 and sends again, a bounded number of times", async () => {
    const { client, waits } = scripted([
      json(429, THROTTLED, { "retry-after": "1" }),
      json(429, THROTTLED, { "retry-after": "2" }),
      json(200, SPECIALS),
    ]);
    await expect(client.get("/api/v1/specials")).resolves.toEqual(SPECIALS);
    expect(waits).toEqual([1000, 2000]);

    const limited = scripted([json(429, THROTTLED, { "retry-after": "1" }), json(429, THROTTLED, { "retry-after": "1" })], {
      maxRetries: 1,
    });
    const error = await limited.client.get("/api/v1/specials").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect([(error as ApiError).code, (error as ApiError).retryAfter]).toEqual(["throttled", 1]);
    expect(limited.waits).toEqual([1000]);
  });

  it("does not wait longer than maxRetryAfterSeconds: the caller gets the error and the wait", async () => {
    const { client, waits } = scripted([json(429, THROTTLED, { "retry-after": "120" })]);
    const error = (await client.get("/api/v1/specials").catch((caught: unknown) => caught)) as ApiError;
    expect([error.status, error.code, error.retryAfter]).toEqual([429, "throttled", 120]);
    expect(waits).toEqual([]);
  });

  it("retries a 503 only where a retry cannot do a thing twice", async () => {
    const unavailable = json(503, { code: "unavailable", message: "down", detail: { retry_after: 1 } }, { "retry-after": "1" });
    const body = { body: { price: 100 }, path: { lot_id: 1 } };
    const once = scripted([unavailable]);
    await expect(once.client.post("/api/v1/lots/{lot_id}/bids", body)).rejects.toMatchObject({ code: "unavailable" });
    const keyed = scripted([unavailable, json(201, { bid: {}, lot: {} })]);
    await keyed.client.post("/api/v1/lots/{lot_id}/bids", { ...body, idempotencyKey: "k1" });
    expect(keyed.transport.requests.map((request) => request.headers["Idempotency-Key"])).toEqual(["k1", "k1"]);
  });

  it("gives up on 401 without a re-login hook, and never asks the hook about a login's own 401", async () => {
    const unauthenticated = json(401, { code: "unauthenticated", message: "Log in first", detail: {} });
    const { client } = scripted([unauthenticated]);
    await expect(client.get("/api/v1/me")).rejects.toMatchObject({ status: 401, code: "unauthenticated" });
    let asked = 0;
    const refused = json(401, { code: "wechat_login_failed", message: "WeChat refused", detail: { reason: "40029" } });
    const login = scripted([refused], { onUnauthorized: async () => ((asked += 1), "t1") });
    const error = (await login.client.loginWechat("bad-code").catch((caught: unknown) => caught)) as ApiError;
    expect([error.code, error.detail.reason, asked]).toEqual(["wechat_login_failed", "40029", 0]);
  });

  it("names an answer without the contract's shape, and no answer at all", async () => {
    const { client } = scripted([{ status: 502, headers: {}, body: "<html>Bad Gateway</html>" }, new NetworkError("offline")]);
    await expect(client.get("/api/v1/specials")).rejects.toMatchObject({ status: 502, code: "invalid_response" });
    await expect(client.get("/api/v1/specials")).rejects.toBeInstanceOf(NetworkError);
  });
});
