// A workflow run followed to its end: polls GET /api/v1/workflow-runs/{id} every half second (a warm executor
// starts its nodes within a second).
import { useCallback, useEffect, useRef, useState } from "react";
import type { Api } from "../api";
import { afterPoll } from "../graph/run";
import type { Job, WorkflowRun } from "../types";

export const POLL_MS = 500;
export const RETRY_POLLS = 10;

export function useRun(api: Api, onError: (message: string) => void) {
  const [run, setRun] = useState<WorkflowRun | null>(null);
  const generation = useRef(0);
  const timer = useRef<number | undefined>(undefined);

  const stop = useCallback(() => {
    generation.current += 1;
    window.clearTimeout(timer.current);
  }, []);

  useEffect(() => stop, [stop]);

  /** Follow run `id` (stops following any earlier one). A retried run (`retried`: the retry's answer) may still
   * read as its old final state for a moment: it shows the answer's state and is followed until it leaves the old
   * one (or RETRY_POLLS polls went by). */
  const follow = useCallback(
    (id: string, retried?: Job) => {
      stop();
      if (retried) setRun((r) => (r && r.run.id === id ? { ...r, run: { ...r.run, ...retried } } : r));
      const mine = generation.current;
      let restarted = !retried;
      let polls = 0;
      const poll = async () => {
        try {
          const state = await api.runState(id);
          if (mine !== generation.current) return;
          polls += 1;
          const next = afterPoll(state.run.state, restarted, polls, RETRY_POLLS);
          restarted = next.restarted;
          if (next.show) setRun(state);
          if (next.again) timer.current = window.setTimeout(poll, POLL_MS);
        } catch (error) {
          if (mine === generation.current) onError((error as Error).message);
        }
      };
      void poll();
    },
    [api, onError, stop],
  );

  const clear = useCallback(() => {
    stop();
    setRun(null);
  }, [stop]);

  return { run, follow, clear };
}
