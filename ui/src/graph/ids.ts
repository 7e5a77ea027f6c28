// Node ids: the pattern the server enforces, and fresh ids for new and pasted nodes.

export const NODE_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const WORKFLOW_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MAX_ID = 64;

export function isValidNodeId(id: string): boolean {
  return NODE_ID_PATTERN.test(id);
}

/** A valid id built from `base` (a stage name or a copied node's id) that is not in `taken`:
 * `clean`, then `clean-2`, `clean-3`... A copy of `clean-2` is `clean-3`, not `clean-2-2`. */
export function uniqueId(base: string, taken: ReadonlySet<string>): string {
  let stem = base.replace(/[^A-Za-z0-9_-]/g, "-").replace(/-\d+$/, "");
  if (!/^[A-Za-z]/.test(stem)) stem = `n${stem}`;
  stem = stem.slice(0, MAX_ID);
  if (!taken.has(stem)) return stem;
  for (let n = 2; ; n += 1) {
    const suffix = `-${n}`;
    const candidate = stem.slice(0, MAX_ID - suffix.length) + suffix;
    if (!taken.has(candidate)) return candidate;
  }
}
