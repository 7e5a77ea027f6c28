import { describe, expect, it } from "vitest";
import { makeEdge } from "./canvas";
import { CATALOGUE, chain, node } from "./fixtures";
import { connectionProblem, isFed, portType, reaches } from "./ports";

describe("portType", () => {
  it("finds a port's type on the right side only", () => {
    expect(portType(CATALOGUE, "infer", "outputs", "predictions")).toBe("Predictions");
    expect(portType(CATALOGUE, "infer", "inputs", "predictions")).toBeUndefined();
    expect(portType(CATALOGUE, "nope", "inputs", "dataset")).toBeUndefined();
  });
});

describe("reaches", () => {
  const { edges } = chain();
  it("follows edges downstream, not upstream", () => {
    expect(reaches(edges, "load", "evaluate")).toBe(true);
    expect(reaches(edges, "evaluate", "load")).toBe(false);
    expect(reaches(edges, "clean", "clean")).toBe(true);
  });
});

describe("connectionProblem", () => {
  const nodes = [...chain().nodes, node("clean-2", "clean"), node("infer-2", "infer")];
  const edges = chain().edges;
  const link = (source: string, sourceHandle: string, target: string, targetHandle: string) => ({
    source,
    sourceHandle,
    target,
    targetHandle,
  });

  it("accepts matching types into a free input", () => {
    expect(connectionProblem(link("load", "dataset", "clean-2", "dataset"), nodes, edges, CATALOGUE)).toBeNull();
  });
  it("refuses differing port types", () => {
    expect(connectionProblem(link("load", "dataset", "evaluate", "predictions"), nodes, edges, CATALOGUE)).toMatch(
      /port types differ: Dataset output 'load.dataset' cannot feed Predictions input/,
    );
  });
  it("refuses an input already fed", () => {
    expect(isFed(edges, "clean", "dataset")).toBe(true);
    expect(connectionProblem(link("clean-2", "dataset", "clean", "dataset"), nodes, edges, CATALOGUE)).toMatch(
      /already fed/,
    );
  });
  it("refuses a connection that closes a cycle", () => {
    const open = [makeEdge("clean", "dataset", "clean-2", "dataset")]; // clean -> clean-2, clean's input free
    expect(connectionProblem(link("clean-2", "dataset", "clean", "dataset"), nodes, open, CATALOGUE)).toMatch(/cycle/);
    expect(connectionProblem(link("clean", "dataset", "clean", "dataset"), nodes, [], CATALOGUE)).toMatch(/cycle/);
  });
  it("refuses handles that are not ports of the node's stage", () => {
    expect(connectionProblem(link("load", "rows", "clean-2", "dataset"), nodes, edges, CATALOGUE)).toMatch(
      /not an output port/,
    );
    expect(connectionProblem(link("load", "dataset", "load", "dataset"), nodes, edges, CATALOGUE)).toMatch(
      /not an input port/,
    );
  });
});
