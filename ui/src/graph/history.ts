// Undo/redo: a bounded history of canvas snapshots. Take a checkpoint (the state before) for each change.

export interface History<T> {
  past: T[];
  future: T[];
}

export const HISTORY_LIMIT = 100;

export function emptyHistory<T>(): History<T> {
  return { past: [], future: [] };
}

/** The history after a change made from `before`: it can be undone; the redo branch is dropped. */
export function checkpoint<T>(history: History<T>, before: T, limit = HISTORY_LIMIT): History<T> {
  return { past: [...history.past, before].slice(-limit), future: [] };
}

/** The state to restore and the new history, or null when there is nothing to undo. */
export function undo<T>(history: History<T>, current: T): { state: T; history: History<T> } | null {
  if (!history.past.length) return null;
  return {
    state: history.past[history.past.length - 1],
    history: { past: history.past.slice(0, -1), future: [current, ...history.future] },
  };
}

export function redo<T>(history: History<T>, current: T): { state: T; history: History<T> } | null {
  if (!history.future.length) return null;
  return {
    state: history.future[0],
    history: { past: [...history.past, current], future: history.future.slice(1) },
  };
}
