// A project's progress (labelled / target), agreement (kappa), current model and learning curve.
import { type AnnotationStatus, curvePoints, progress } from "../annotate";

const W = 220;
const H = 90;

export function AnnotateStats({ status }: { status: AnnotationStatus | null }) {
  if (!status) return <aside className="annotate-stats">Loading status…</aside>;
  const points = curvePoints(status.curve, W, H);
  return (
    <aside className="annotate-stats" data-testid="annotate-stats">
      <div className="annotate-progress" title={`${status.labelled} of ${status.target} labelled`}>
        <div className="annotate-progress-fill" style={{ width: `${progress(status)}%` }} />
      </div>
      <p data-testid="progress">
        {status.labelled} / {status.target} labelled · {status.mine} by you
      </p>
      <dl>
        <dt>Agreement</dt>
        <dd data-testid="kappa">
          {status.kappa === null
            ? "κ: not yet (needs items labelled twice)"
            : `κ = ${status.kappa.toFixed(2)} (${status.kappa_method ?? ""}, ${status.kappa_items} items)`}
        </dd>
        <dt>Model</dt>
        <dd data-testid="model-version">
          {status.model ? `${status.model.name} v${status.model.version}` : "no model yet"}
          {status.model?.aliases.length ? ` @${status.model.aliases.join(", @")}` : ""}
        </dd>
        <dt>To review</dt>
        <dd data-testid="disagreement-count">{status.disagreements}</dd>
      </dl>
      <svg
        data-testid="curve"
        className="annotate-curve"
        viewBox={`-4 -4 ${W + 8} ${H + 8}`}
        role="img"
        aria-label="learning curve: evaluation score by labels"
      >
        <rect x={0} y={0} width={W} height={H} />
        {points && <polyline points={points} />}
        {points &&
          points.split(" ").map((p) => {
            const [x, y] = p.split(",");
            return <circle key={p} cx={x} cy={y} r={2.5} />;
          })}
      </svg>
      <p className="annotate-hint">
        {status.curve.length
          ? status.curve.map((p) => `${p.labels}: ${p.score === null ? "–" : p.score.toFixed(3)}`).join(" · ")
          : "The learning curve appears after the first training round."}
      </p>
    </aside>
  );
}
