// A workflow's saved versions: open one, or diff two of them (the server's semantic diff).
import { useEffect, useState } from "react";
import type { Api } from "../api";
import { type DiffLine, diffLines } from "../graph/diff";
import type { WorkflowVersion } from "../types";
import { Dialog } from "./Dialog";

interface Props {
  api: Api;
  name: string;
  onOpen: (version: number) => void;
  onError: (message: string) => void;
  onClose: () => void;
}

export function VersionsDialog({ api, name, onOpen, onError, onClose }: Props) {
  const [versions, setVersions] = useState<WorkflowVersion[]>([]);
  const [from, setFrom] = useState<number>();
  const [to, setTo] = useState<number>();
  const [lines, setLines] = useState<DiffLine[] | null>(null);

  useEffect(() => {
    api.versions(name).then(
      (found) => {
        setVersions(found);
        setTo(found[0]?.version);
        setFrom(found[1]?.version ?? found[0]?.version);
      },
      (e: Error) => onError(e.message),
    );
  }, [api, name, onError]);

  const compare = () => {
    if (from === undefined || to === undefined) return;
    api.diff(name, from, to).then(
      (d) => setLines(diffLines(d)),
      (e: Error) => onError(e.message),
    );
  };
  const picker = (value: number | undefined, set: (v: number) => void, testid: string) => (
    <select data-testid={testid} value={value} onChange={(e) => set(Number(e.target.value))}>
      {versions.map((v) => (
        <option key={v.version} value={v.version}>
          v{v.version}
        </option>
      ))}
    </select>
  );

  return (
    <Dialog title={`Versions of ${name}`} onClose={onClose}>
      <table className="versions" data-testid="versions-list">
        <tbody>
          {versions.map((v) => (
            <tr key={v.version}>
              <td>v{v.version}</td>
              <td>{v.created}</td>
              <td>{v.author}</td>
              <td>
                <code>{v.hash.slice(0, 12)}</code>
              </td>
              <td>
                <button onClick={() => onOpen(v.version)}>open</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="diff-controls">
        from {picker(from, setFrom, "diff-from")} to {picker(to, setTo, "diff-to")}
        <button data-testid="diff" onClick={compare} disabled={versions.length === 0}>
          Diff
        </button>
      </div>
      {lines && (
        <ul className="diff" data-testid="diff-lines">
          {lines.length === 0 && <li>no differences in logic</li>}
          {lines.map((l, i) => (
            <li key={i} className={`diff-${l.sign === "+" ? "add" : l.sign === "-" ? "remove" : "change"}`}>
              {l.sign} {l.text}
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}
