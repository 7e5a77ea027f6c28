import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError } from "./api";

function answer(status: number, body: unknown) {
  const fetch = vi.fn(async () => new Response(JSON.stringify(body), { status }));
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

afterEach(() => vi.unstubAllGlobals());

describe("Api", () => {
  it("sends the bearer token and unwraps the envelope", async () => {
    const fetch = answer(200, { code: 0, data: { stages: [{ name: "load" }] }, message: "success" });
    const stages = await new Api("tok").stages();
    expect(stages).toEqual([{ name: "load" }]);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/v1/stages");
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer tok");
  });
  it("puts a file as JSON under its name", async () => {
    const fetch = answer(200, { code: 0, data: { name: "a-b", version: 2, unchanged: false }, message: "success" });
    const file = { name: "a-b" } as Parameters<Api["save"]>[0];
    expect((await new Api("t").save(file)).version).toBe(2);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect([url, init.method, init.body]).toEqual(["/api/v1/workflows/a-b", "PUT", JSON.stringify(file)]);
  });
  it("sets, reads and removes a schedule and retries a run", async () => {
    const schedule = { deployment: "pipeline/wf-a", deployment_id: "d", cron: "0 2 * * *", timezone: "UTC" };
    const fetch = answer(200, { code: 0, data: schedule, message: "success" });
    const api = new Api("t");
    expect(await api.setSchedule("a", "0 2 * * *", "UTC")).toEqual(schedule);
    await api.schedule("a");
    await api.unschedule("a");
    await api.retry("run/1");
    const calls = (fetch.mock.calls as unknown as [string, RequestInit][]).map(([url, init]) => [url, init.method]);
    expect(calls).toEqual([
      ["/api/v1/workflows/a/schedule", "PUT"],
      ["/api/v1/workflows/a/schedule", "GET"],
      ["/api/v1/workflows/a/schedule", "DELETE"],
      ["/api/v1/workflow-runs/run%2F1/retry", "POST"],
    ]);
    const put = (fetch.mock.calls[0] as unknown as [string, RequestInit])[1];
    expect(put.body).toBe(JSON.stringify({ cron: "0 2 * * *", timezone: "UTC" }));
  });
  it("throws the envelope's message and keeps per-node errors", async () => {
    answer(422, {
      code: 42200,
      data: { errors: [{ node: "x", message: "unknown stage" }, { bad: 1 }] },
      message: "no",
    });
    const error = await new Api("t").check({} as Parameters<Api["check"]>[0]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toBe("POST /workflows/check: no");
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).nodeErrors).toEqual([{ node: "x", message: "unknown stage" }]);
  });
  it("reports a reply that is not the envelope with its HTTP status", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" })),
    );
    await expect(new Api("t").workflows()).rejects.toThrow("GET /workflows: HTTP 502 Bad Gateway");
  });
});
