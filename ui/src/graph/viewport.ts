// Whether the nodes are all in view: the canvas refits itself when a size change (the side panel opening or
// closing) would otherwise push nodes that were in view out of it.

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface View {
  x: number;
  y: number;
  zoom: number;
}

/** `bounds` (flow coordinates) lies wholly inside a `width` x `height` pane shown at `view`. */
export function inView(bounds: Box, view: View, width: number, height: number): boolean {
  const left = bounds.x * view.zoom + view.x;
  const top = bounds.y * view.zoom + view.y;
  const right = left + bounds.width * view.zoom;
  const bottom = top + bounds.height * view.zoom;
  return left >= 0 && top >= 0 && right <= width && bottom <= height;
}

/** Refit after the pane went from `before` to `after` (sizes): the nodes were all in view and no longer are. A
 * view the user zoomed or panned so that nodes were already out is left alone. */
export function needsRefit(
  bounds: Box | null,
  view: View,
  before: { width: number; height: number },
  after: { width: number; height: number },
): boolean {
  if (!bounds || bounds.width <= 0 || bounds.height <= 0) return false;
  return inView(bounds, view, before.width, before.height) && !inView(bounds, view, after.width, after.height);
}
