import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type AnnotationProject,
  acceptAnswer,
  addSpan,
  curvePoints,
  keyAction,
  progress,
  removeSpan,
  segments,
  startingSpans,
  undoneNote,
  wantsAnnotate,
} from "./annotate";
import { Api } from "./api";

const classify: AnnotationProject = {
  name: "reviews",
  task_type: "text_classification",
  labels: ["正面", "负面"],
  entity_types: [],
  guidelines: "",
  roles: ["annotator"],
};
const ner: AnnotationProject = { ...classify, task_type: "ner", labels: [], entity_types: ["LOC", "PER"] };
const prelabel = { model: "m", model_version: "1", round: 1, entities: null, confidence: 0.8, scores: {} };

afterEach(() => vi.unstubAllGlobals());

describe("keys", () => {
  it("maps 1-9, Enter, S and U and nothing else", () => {
    expect(keyAction("1")).toEqual({ kind: "choose", index: 0 });
    expect(keyAction("9")).toEqual({ kind: "choose", index: 8 });
    expect(keyAction("0")).toBeNull();
    expect(keyAction("Enter")).toEqual({ kind: "accept" });
    expect(keyAction("s")).toEqual({ kind: "skip" });
    expect(keyAction("U")).toEqual({ kind: "undo" });
    expect(keyAction("x")).toBeNull();
  });
  it("Enter accepts the pre-label, or the spans on screen", () => {
    const task = { item: null, prelabel: { ...prelabel, label: "负面" }, answer: null, undone: null };
    expect(acceptAnswer(classify, task, [])).toEqual({ label: "负面" });
    expect(acceptAnswer(classify, { ...task, prelabel: null }, [])).toBeNull();
    expect(acceptAnswer(classify, { ...task, prelabel: { ...prelabel, label: "中性" } }, [])).toBeNull();
    const spans = [{ text: "北京", type: "LOC", start: 1, end: 3 }];
    expect(acceptAnswer(ner, task, spans)).toEqual({ entities: spans });
  });
  it("U: an undone answer is named as taken back and its spans come back on screen", () => {
    const mine = [{ text: "北京", type: "LOC", start: 1, end: 3 }];
    const model = [{ text: "张三", type: "PER", start: 0, end: 2 }];
    const task = { item: null, prelabel: { ...prelabel, label: null, entities: model }, answer: null, undone: null };
    expect(undoneNote(task)).toBeNull();
    expect(undoneNote({ ...task, undone: "skip" })).toBe("Skip taken back.");
    const undone = { ...task, undone: "answer" as const, answer: { label: "负面", entities: null } };
    expect(undoneNote(undone)).toBe("Your earlier answer (负面) was taken back: answer again.");
    const spans = { ...task, undone: "answer" as const, answer: { label: null, entities: mine } };
    expect(undoneNote(spans)).toBe("Your earlier answer (1 spans) was taken back: answer again.");
    expect(startingSpans(spans)).toEqual(mine);
    expect(startingSpans(task)).toEqual(model);
    expect(startingSpans({ ...task, prelabel: null })).toEqual([]);
  });
});

describe("spans", () => {
  const text = "从北京到上海";
  it("adds a selection as a span, replacing what it overlaps, and removes by offsets", () => {
    let spans = addSpan([], text, 1, 3, "LOC");
    expect(spans).toEqual([{ text: "北京", type: "LOC", start: 1, end: 3 }]);
    spans = addSpan(spans, text, 6, 4, "LOC"); // a backwards selection
    expect(spans.map((s) => s.text)).toEqual(["北京", "上海"]);
    spans = addSpan(spans, text, 2, 5, "PER"); // overlaps both
    expect(spans).toEqual([{ text: "京到上", type: "PER", start: 2, end: 5 }]);
    expect(addSpan(spans, text, 3, 3, "LOC")).toBe(spans);
    expect(removeSpan(spans, 2, 5)).toEqual([]);
  });
  it("cuts the text into runs that join back into it", () => {
    const spans = [
      { text: "上海", type: "LOC", start: 4, end: 6 },
      { text: "北京", type: "LOC", start: 1, end: 3 },
    ];
    const parts = segments(text, spans);
    expect(parts.map((p) => p.text).join("")).toBe(text);
    expect(parts.filter((p) => p.span).map((p) => p.start)).toEqual([1, 4]);
  });
});

describe("status", () => {
  it("progress is labelled over target, capped", () => {
    expect(progress({ labelled: 5, target: 20 })).toBe(25);
    expect(progress({ labelled: 30, target: 20 })).toBe(100);
    expect(progress({ labelled: 0, target: 0 })).toBe(0);
  });
  it("the curve leaves out rounds without a score", () => {
    const points = curvePoints(
      [
        { round: 1, labels: 50, score: 0.5 },
        { round: 2, labels: 100, score: null },
        { round: 3, labels: 100, score: 1 },
      ],
      200,
      100,
    );
    expect(points).toBe("100.0,50.0 200.0,0.0");
    expect(curvePoints([], 10, 10)).toBe("");
  });
  it("annotators and reviewers land on the Annotate page", () => {
    expect(wantsAnnotate("", ["annotator"])).toBe(true);
    expect(wantsAnnotate("", ["reviewer"])).toBe(true);
    expect(wantsAnnotate("", ["operator", "annotator"])).toBe(false);
    expect(wantsAnnotate("#/annotate", ["admin"])).toBe(true);
    expect(wantsAnnotate("", ["viewer"])).toBe(false);
  });
});

describe("annotation API", () => {
  it("answers, skips and adjudicates under the project's path", async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ code: 0, data: { item: null }, message: "success" })));
    vi.stubGlobal("fetch", fetch);
    const api = new Api("t");
    await api.annotationAnswer("my.project", 7, { label: "正面" }, 1.5);
    await api.annotationSkip("my.project", 8);
    await api.annotationAdjudicate("my.project", 9, { entities: [] });
    const calls = fetch.mock.calls as unknown as [string, RequestInit][];
    expect(calls.map(([url, init]) => [url, init.method, init.body])).toEqual([
      ["/api/v1/annotation/projects/my.project/answers", "POST", JSON.stringify({ item_id: 7, label: "正面", seconds: 1.5 })],
      ["/api/v1/annotation/projects/my.project/skip", "POST", JSON.stringify({ item_id: 8 })],
      ["/api/v1/annotation/projects/my.project/adjudications", "POST", JSON.stringify({ item_id: 9, entities: [] })],
    ]);
  });
});
