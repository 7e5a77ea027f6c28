import { describe, expect, it } from "vitest";
import { isValidNodeId, uniqueId } from "./ids";

describe("uniqueId", () => {
  it("uses the base when free, then numbers it", () => {
    expect(uniqueId("clean", new Set())).toBe("clean");
    expect(uniqueId("clean", new Set(["clean"]))).toBe("clean-2");
    expect(uniqueId("clean", new Set(["clean", "clean-2"]))).toBe("clean-3");
  });
  it("numbers a copy of a numbered id from its stem", () => {
    expect(uniqueId("clean-2", new Set(["clean", "clean-2"]))).toBe("clean-3");
  });
  it("always answers a valid id", () => {
    expect(uniqueId("2 bad.name", new Set())).toBe("n2-bad-name");
    const long = "a".repeat(64);
    const id = uniqueId(long, new Set([long]));
    expect(id).toHaveLength(64);
    expect(id.endsWith("-2")).toBe(true);
    expect(isValidNodeId(id)).toBe(true);
  });
});

describe("isValidNodeId", () => {
  it("follows the server's pattern", () => {
    expect(isValidNodeId("write_results-1")).toBe(true);
    expect(isValidNodeId("1load")).toBe(false);
    expect(isValidNodeId("a.b")).toBe(false);
    expect(isValidNodeId("a".repeat(65))).toBe(false);
  });
});
