// Ctrl/Cmd+Z undo, Ctrl/Cmd+Shift+Z (or Ctrl+Y) redo, Ctrl/Cmd+C copy, Ctrl/Cmd+V paste: not while typing, and
// Ctrl+C leaves selected text (the exported code, a summary) to the browser.
import { useEffect, useRef } from "react";

interface Keys {
  undo: () => void;
  redo: () => void;
  copy: () => void;
  paste: () => void;
}

const SHORTCUTS: Record<string, keyof Keys> = { z: "undo", "shift+z": "redo", y: "redo", c: "copy", v: "paste" };

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return !!el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
}

export function useKeys(keys: Keys): void {
  const latest = useRef(keys);
  latest.current = keys;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (!(event.ctrlKey || event.metaKey) || typing(event.target)) return;
      const action = SHORTCUTS[`${event.shiftKey ? "shift+" : ""}${event.key.toLowerCase()}`];
      if (!action || (action === "copy" && window.getSelection()?.toString())) return;
      event.preventDefault();
      latest.current[action]();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}
