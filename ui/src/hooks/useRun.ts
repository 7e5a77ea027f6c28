// A workflow run followed to its end: polls GET /api/v1/workflow-runs/{id} about every second.
import { useCallback, useEffect, useRef, useState } from "react";
import type { Api } from "../api";
import { isFinal } from "../graph/run";
import type { WorkflowRun } from "../types";

export const POLL_MS = 1000;

export function useRun(api: Api, onError: (message: string) => void) {
  const [run, setRun] = useState<WorkflowRun | null>(null);
  const generation = useRef(0);
  const timer = useRef<number | undefined>(undefined);

  const stop = useCallback(() => {
    generation.current += 1;
    window.clearTimeout(timer.current);
  }, []);

  useEffect(() => stop, [stop]);

  /** Follow run `id` (stops following any earlier one). */
  const follow = useCallback(
    (id: string) => {
      stop();
      const mine = generation.current;
      const poll = async () => {
        try {
          const state = await api.runState(id);
          if (mine !== generation.current) return;
          setRun(state);
          if (!isFinal(state.run.state)) timer.current = window.setTimeout(poll, POLL_MS);
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
