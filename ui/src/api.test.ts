import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError, actionOf, readableError, SIGN_IN_EXPIRED } from "./api";

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
    expect((error as ApiError).message).toBe("The dry run refused: no.");
    expect((error as ApiError).detail).toBe("no");
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).nodeErrors).toEqual([{ node: "x", message: "unknown stage" }]);
  });
  it("reports a reply that is not the envelope with its HTTP status", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" })),
    );
    await expect(new Api("t").workflows()).rejects.toThrow(
      "Listing the saved workflows failed: the model did not answer (HTTP 502 Bad Gateway); try again later.",
    );
  });
  it("uploads a file's bytes as they are, with their content type", async () => {
    const uploaded = { path: "uploads/a b.csv", bytes: 9, rows: 1, columns: ["text"], replaced: false };
    const fetch = answer(200, { code: 0, data: uploaded, message: "success" });
    const data = new Blob(["text\nhello"]);
    expect(await new Api("t").uploadData("a b.csv", data, "text/csv")).toEqual(uploaded);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect([url, init.method, init.body]).toEqual(["/api/v1/data-files/a%20b.csv", "PUT", data]);
    expect((init.headers as Record<string, string>)["Content-Type"]).toBe("text/csv");
  });
  it("sends an expired token's 401 to the sign-in, with the line it shows", async () => {
    answer(401, { code: 40100, data: { reason: "expired" }, message: "your sign-in has expired: sign in again" });
    const heard: ApiError[] = [];
    const error = await new Api("t", (e) => heard.push(e)).stages().catch((e: unknown) => e);
    expect(heard).toEqual([error]);
    expect((error as ApiError).unauthenticated).toBe(true);
    expect((error as ApiError).message).toBe(SIGN_IN_EXPIRED);
  });
  it("does not call the sign-in hook on other errors", async () => {
    answer(403, { code: 40300, data: null, message: "role viewer may not use workflows_run" });
    const heard: ApiError[] = [];
    await new Api("t", (e) => heard.push(e)).run("a", 1).catch(() => undefined);
    expect(heard).toEqual([]);
  });
  it("says an API that does not answer in words", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => {
        throw new TypeError("Failed to fetch");
      }),
    );
    const error = (await new Api("t").stages().catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/^Loading the stage palette failed: the API does not answer \(Failed to fetch\)/);
  });
});

describe("readableError", () => {
  it("names what failed in words, never the route", () => {
    expect(actionOf("PUT", "/workflows/a-b")).toBe("saving the workflow");
    expect(actionOf("GET", "/workflows/a-b")).toBe("opening the workflow");
    expect(actionOf("GET", "/workflows/a-b/versions")).toBe("listing the versions");
    expect(actionOf("POST", "/workflows/a-b/runs")).toBe("starting the run");
    expect(actionOf("GET", "/workflow-runs/x")).toBe("following the run");
    expect(actionOf("DELETE", "/workflows/a/schedule")).toBe("the schedule");
    expect(actionOf("GET", "/annotation/projects")).toBe("the annotation project");
  });
  it("gives every status the page can get one line with what to do", () => {
    const cases: [number, string, unknown, RegExp][] = [
      [401, "invalid token: expired", null, /^Your sign-in has expired: sign in again/],
      [
        401,
        "invalid token: bad signature",
        { reason: "invalid" },
        /refused your sign-in \(invalid token: bad signature\): sign in again/,
      ],
      [403, "role viewer may not", null, /^Saving the workflow is not allowed for your roles .*ask an admin/],
      [404, "no such workflow 'x'", null, /^Saving the workflow failed: no such workflow 'x' \(.*reload/],
      [409, "saved by others", null, /saved by others; reload and try again\.$/],
      [413, "body larger than 1 MB", null, /too large .*make it smaller/],
      [
        422,
        "Node 'load': path outside the data roots.",
        null,
        /^Saving the workflow refused: Node 'load': path outside the data roots\.$/,
      ],
      [429, "rate limit", null, /too many requests; wait 7 s and try again/],
      [500, "internal error", null, /failed on the server \(internal error\); try again, or ask an admin/],
      [503, "the Prefect server is down", null, /the Prefect server is down; try again in a moment/],
      [504, "timed out", null, /the model did not answer/],
    ];
    for (const [status, detail, data, expected] of cases) {
      const line = readableError("PUT", "/workflows/x", status, detail, data, status === 429 ? "7" : null);
      expect(line, `HTTP ${status}`).toMatch(expected);
      expect(line).not.toMatch(/PUT|\/workflows/);
    }
  });
});
