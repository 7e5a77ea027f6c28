// The canvas state with its undo/redo history. `change` records a checkpoint; React Flow's own changes
// (drags in progress, selection, measurements) do not, `mark` is called before a drag or a delete instead.
import { applyEdgeChanges, applyNodeChanges, type EdgeChange, type NodeChange } from "@xyflow/react";
import { useCallback, useRef, useState } from "react";
import type { Canvas, CanvasNode } from "../graph/canvas";
import { checkpoint, emptyHistory, type History, redo, undo } from "../graph/history";

const EMPTY: Canvas = { nodes: [], edges: [] };

export function useCanvas() {
  const [canvas, setCanvas] = useState<Canvas>(EMPTY);
  const [history, setHistory] = useState<History<Canvas>>(emptyHistory);
  const current = useRef(canvas);
  const historyRef = useRef(history);

  const show = useCallback((next: Canvas, nextHistory: History<Canvas>) => {
    current.current = next;
    historyRef.current = nextHistory;
    setCanvas(next);
    setHistory(nextHistory);
  }, []);

  /** Apply an undoable change. Successive changes with the same `key` (typing in a form) are one step. */
  const change = useCallback(
    (update: (canvas: Canvas) => Canvas, key: string | null = null) => {
      const before = current.current;
      show(update(before), checkpoint(historyRef.current, before, key));
    },
    [show],
  );

  /** A checkpoint of the current canvas: called before React Flow moves or deletes something. */
  const mark = useCallback(() => {
    historyRef.current = checkpoint(historyRef.current, current.current);
    setHistory(historyRef.current);
  }, []);

  const onNodesChange = useCallback(
    (changes: NodeChange<CanvasNode>[]) => {
      const next = { ...current.current, nodes: applyNodeChanges(changes, current.current.nodes) };
      show(next, historyRef.current);
    },
    [show],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      show({ ...current.current, edges: applyEdgeChanges(changes, current.current.edges) }, historyRef.current);
    },
    [show],
  );

  const step = useCallback(
    (move: typeof undo) => {
      const result = move(historyRef.current, current.current);
      if (result) show(result.state, result.history);
      return result !== null;
    },
    [show],
  );

  /** Replace the canvas and forget the history (a workflow opened). */
  const reset = useCallback(
    (next: Canvas) => {
      show(next, emptyHistory());
    },
    [show],
  );

  return {
    canvas,
    current,
    change,
    mark,
    reset,
    onNodesChange,
    onEdgesChange,
    undo: useCallback(() => step(undo), [step]),
    redo: useCallback(() => step(redo), [step]),
    canUndo: history.past.length > 0,
    canRedo: history.future.length > 0,
  };
}
