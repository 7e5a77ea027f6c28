// An item's text with its entity spans highlighted; a click on a span removes it. The parent reads a selection's
// character offsets through `offsetsOf` (the rendered text is exactly the item's text, spans included).
import type { Ref } from "react";
import { type Span, segments } from "../annotate";

export function AnnotateText({
  text,
  spans,
  types,
  onRemove,
  boxRef,
}: {
  text: string;
  spans: Span[];
  types: string[];
  onRemove?: (span: Span) => void;
  boxRef?: Ref<HTMLDivElement>;
}) {
  return (
    <div className="annotate-text" data-testid="item-text" ref={boxRef}>
      {segments(text, spans).map((part) =>
        part.span ? (
          <mark
            key={part.start}
            className={`annotate-span type-${types.indexOf(part.span.type) % 6}`}
            data-testid="span"
            data-type={part.span.type}
            title={onRemove ? `${part.span.type} (click to remove)` : part.span.type}
            onClick={onRemove ? () => onRemove(part.span!) : undefined}
          >
            {part.text}
            <sub>{part.span.type}</sub>
          </mark>
        ) : (
          <span key={part.start}>{part.text}</span>
        ),
      )}
    </div>
  );
}

/** The [start, end) character offsets of the current selection inside `box`, or null. The span type tags (<sub>)
 * are not part of the item's text, so they are left out of the count. */
export function offsetsOf(box: HTMLElement): [number, number] | null {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  if (!box.contains(range.startContainer) || !box.contains(range.endContainer)) return null;
  const count = (node: Node, offset: number) => {
    const before = document.createRange();
    before.setStart(box, 0);
    before.setEnd(node, offset);
    const fragment = before.cloneContents();
    fragment.querySelectorAll("sub").forEach((tag) => tag.remove());
    return fragment.textContent?.length ?? 0;
  };
  return [count(range.startContainer, range.startOffset), count(range.endContainer, range.endOffset)];
}
