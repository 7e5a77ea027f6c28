import { describe, expect, it } from "vitest";
import { checkpoint, emptyHistory, redo, undo } from "./history";

describe("history", () => {
  it("undoes and redoes snapshots in order", () => {
    let h = emptyHistory<number>();
    h = checkpoint(h, 1); // 1 -> 2
    h = checkpoint(h, 2); // 2 -> 3
    const u1 = undo(h, 3)!;
    expect(u1.state).toBe(2);
    const u2 = undo(u1.history, u1.state)!;
    expect(u2.state).toBe(1);
    expect(undo(u2.history, u2.state)).toBeNull();
    const r1 = redo(u2.history, u2.state)!;
    expect(r1.state).toBe(2);
    expect(redo(r1.history, r1.state)!.state).toBe(3);
  });
  it("drops the redo branch on a new change", () => {
    const h = checkpoint(emptyHistory<string>(), "a");
    const u = undo(h, "b")!;
    const changed = checkpoint(u.history, u.state);
    expect(redo(changed, "c")).toBeNull();
    expect(undo(changed, "c")!.state).toBe("a");
  });
  it("keeps at most `limit` snapshots", () => {
    let h = emptyHistory<number>();
    for (let i = 0; i < 5; i += 1) h = checkpoint(h, i, null, 3);
    expect(h.past).toEqual([2, 3, 4]);
  });
  it("makes successive changes with one key a single step", () => {
    let h = checkpoint(emptyHistory<string>(), "", "params:a"); // typing "x", "xy", "xyz" into node a's form
    h = checkpoint(h, "x", "params:a");
    h = checkpoint(h, "xy", "params:a");
    expect(h.past).toEqual([""]);
    h = checkpoint(h, "xyz", "params:b"); // another node's form: a new step
    expect(h.past).toEqual(["", "xyz"]);
    const back = undo(h, "xyz!")!;
    expect(checkpoint(back.history, back.state, "params:b").past).toEqual(["", "xyz"]); // after an undo: a new step
  });
});
