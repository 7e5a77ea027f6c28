// Undo/redo: a bounded history of canvas snapshots. Take a checkpoint (the state before) for each change.

export interface History<T> {
  past: T[];
  future: T[];
  /** The key of the last change: a change with the same key joins its step (typing into one form). */
  key: string | null;
}

export const HISTORY_LIMIT = 100;

export function emptyHistory<T>(): History<T> {
  return { past: [], future: [], key: null };
}

/** The history after a change made from `before`: it can be undone; the redo branch is dropped. Successive
 * changes with the same non-null `key` are one step (undone together, back to the state before the first). */
export function checkpoint<T>(history: History<T>, before: T, key: string | null = null, limit = HISTORY_LIMIT) {
  if (key !== null && key === history.key) return { ...history, future: [] };
  return { past: [...history.past, before].slice(-limit), future: [], key };
}

/** The state to restore and the new history, or null when there is nothing to undo. */
export function undo<T>(history: History<T>, current: T): { state: T; history: History<T> } | null {
  if (!history.past.length) return null;
  return {
    state: history.past[history.past.length - 1],
    history: { past: history.past.slice(0, -1), future: [current, ...history.future], key: null },
  };
}

export function redo<T>(history: History<T>, current: T): { state: T; history: History<T> } | null {
  if (!history.future.length) return null;
  return {
    state: history.future[0],
    history: { past: [...history.past, current], future: history.future.slice(1), key: null },
  };
}
