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
    for (let i = 0; i < 5; i += 1) h = checkpoint(h, i, 3);
    expect(h.past).toEqual([2, 3, 4]);
  });
});
