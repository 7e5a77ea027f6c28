import { describe, expect, it } from "vitest";
import { inView, needsRefit } from "./viewport";

describe("viewport", () => {
  const bounds = { x: 0, y: 0, width: 1000, height: 200 };
  const view = { x: 20, y: 20, zoom: 1 };
  it("tells whether the nodes are in view", () => {
    expect(inView(bounds, view, 1100, 400)).toBe(true);
    expect(inView(bounds, view, 800, 400)).toBe(false);
    expect(inView(bounds, { x: 20, y: 20, zoom: 0.5 }, 800, 400)).toBe(true);
    expect(inView(bounds, { x: -10, y: 20, zoom: 1 }, 1100, 400)).toBe(false);
  });
  it("refits only when a narrower pane would hide nodes that were in view", () => {
    expect(needsRefit(bounds, view, { width: 1400, height: 600 }, { width: 1040, height: 600 })).toBe(false);
    expect(needsRefit(bounds, view, { width: 1400, height: 600 }, { width: 900, height: 600 })).toBe(true);
    const zoomedIn = { x: -500, y: 0, zoom: 2 };
    expect(needsRefit(bounds, zoomedIn, { width: 1400, height: 600 }, { width: 900, height: 600 })).toBe(false);
    expect(needsRefit(null, view, { width: 1400, height: 600 }, { width: 900, height: 600 })).toBe(false);
  });
});
