import { describe, expect, it } from "vitest";
import { browserTimeZone, cronProblem, scheduleBadge } from "./schedule";

describe("schedule helpers", () => {
  it("accepts 5- and 6-field crons and names what is wrong otherwise", () => {
    expect(cronProblem("0 2 * * *")).toBeNull();
    expect(cronProblem(" */15 8-18 * * MON-FRI ")).toBeNull();
    expect(cronProblem("0 0 2 * * *")).toBeNull();
    expect(cronProblem("")).toMatch(/cron expression/);
    expect(cronProblem("0 2 * *")).toMatch(/not 4/);
    expect(cronProblem("0 2 * * * * *")).toMatch(/not 7/);
    expect(cronProblem("0 2 * * ;")).toMatch(/';' is not/);
  });
  it("shows a schedule compactly", () => {
    const s = { deployment: "pipeline/wf-a", deployment_id: "d", cron: "0 2 * * *", timezone: "Asia/Shanghai" };
    expect(scheduleBadge({ ...s, active: true, version: 3 })).toBe("⏰ 0 2 * * * Asia/Shanghai");
    expect(scheduleBadge({ ...s, timezone: null, active: false, version: 3 })).toBe("⏰ 0 2 * * * UTC (paused)");
    expect(scheduleBadge({ ...s, cron: null, active: true, version: 3 })).toBeNull();
    expect(scheduleBadge(null)).toBeNull();
  });
  it("knows a time zone", () => {
    expect(browserTimeZone()).toMatch(/\S/);
  });
});
