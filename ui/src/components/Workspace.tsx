// The editor: palette, canvas, side panel, the workflow bar and the status line, wired to the API.
import {
  Background,
  type Connection,
  Controls,
  type FinalConnectionState,
  MiniMap,
  ReactFlow,
  useReactFlow,
} from "@xyflow/react";
import { type DragEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Api, ApiError } from "../api";
import type { Session } from "../auth";
import { download } from "../download";
import { type Canvas, type CanvasNode, makeEdge, renameNode } from "../graph/canvas";
import { copySelection, paste } from "../graph/clipboard";
import { fromWorkflowFile, toWorkflowFile } from "../graph/convert";
import { uniqueId, WORKFLOW_NAME_PATTERN } from "../graph/ids";
import { autoLayout, NODE_WIDTH } from "../graph/layout";
import { catalogueOf, connectionProblem, type Link } from "../graph/ports";
import { canRetry, isFinal, nodeBadge, nodeFailure, nodeRows, runLine } from "../graph/run";
import { uploadKind, withUploadedSource } from "../graph/upload";
import { needsRefit } from "../graph/viewport";
import { pageTerms } from "../graph/words";
import { useCanvas } from "../hooks/useCanvas";
import { useKeys } from "../hooks/useKeys";
import { useRun } from "../hooks/useRun";
import type { CheckError, Params, Schedule, StageInfo, WorkflowSummary } from "../types";
import { CatalogueContext } from "./catalogueContext";
import { Dialog } from "./Dialog";
import { Palette, STAGE_MIME } from "./Palette";
import { ScheduleDialog } from "./ScheduleDialog";
import { SidePanel } from "./SidePanel";
import { type ShownNode, StageNode } from "./StageNode";
import { VersionsDialog } from "./VersionsDialog";
import { WorkflowBar } from "./WorkflowBar";

interface Status {
  kind: "info" | "error";
  text: string;
}

const HASH_KEY = "workflow";
const FIT = { maxZoom: 1 };
const DELETE_KEYS = ["Backspace", "Delete"]; // one array: React Flow re-subscribes on a new one

function hashWorkflow(): string | null {
  return new URLSearchParams(window.location.hash.slice(1)).get(HASH_KEY);
}

function setHashWorkflow(name: string): void {
  window.history.replaceState(null, "", `#${HASH_KEY}=${encodeURIComponent(name)}`);
}

/** Node id -> message (with what to do, in the page's terms); the messages that name no node are returned apart. */
function byNode(errors: CheckError[]): { nodes: Record<string, string>; other: string[] } {
  const nodes: Record<string, string> = {};
  const other: string[] = [];
  for (const e of errors) {
    const line = e.hint ? `${e.message} — ${pageTerms(e.hint)}` : e.message;
    if (e.node) nodes[e.node] = nodes[e.node] ? `${nodes[e.node]}; ${line}` : line;
    else other.push(line);
  }
  return { nodes, other };
}

/** A finished or refused connection drag as source -> target, whichever end the user started from. */
function linkOf(state: FinalConnectionState): Link | null {
  const { fromHandle, toHandle } = state;
  if (!fromHandle || !toHandle) return null;
  const [source, target] = fromHandle.type === "source" ? [fromHandle, toHandle] : [toHandle, fromHandle];
  return { source: source.nodeId, sourceHandle: source.id, target: target.nodeId, targetHandle: target.id };
}

interface Props {
  session: Session;
  onSignOut: () => void;
  /** The API refused the token (expired): back to the sign-in, with this line. */
  onExpired: (why: string) => void;
}

/** A node's size for the layout: as drawn when React Flow measured it, else from what the card shows (its ports
 * and a line per key setting), so that unmeasured nodes do not overlap either. */
function sizeFor(catalogue: ReadonlyMap<string, StageInfo>) {
  return (n: CanvasNode) => {
    if (n.measured?.width && n.measured?.height) return { width: n.measured.width, height: n.measured.height };
    const stage = catalogue.get(n.type ?? "");
    const ports = Math.max(stage?.inputs.length ?? 1, stage?.outputs.length ?? 1);
    return { width: NODE_WIDTH, height: 44 + 24 * ports + 20 * 3 + 28 };
  };
}

export function Workspace({ session, onSignOut, onExpired }: Props) {
  const api = useMemo(() => new Api(session.token, (e) => onExpired(e.message)), [session.token, onExpired]);
  const flow = useReactFlow();
  const editor = useCanvas();
  const { canvas, current, change, reset } = editor;
  const edit = session.canEdit;

  const [stages, setStages] = useState<StageInfo[]>([]);
  const [workflows, setWorkflows] = useState<WorkflowSummary[]>([]);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [status, setStatus] = useState<Status>({ kind: "info", text: "" });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [dialog, setDialog] = useState<"versions" | "schedule" | { filename: string; code: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [savedJson, setSavedJson] = useState<string | null>(null); // the file as last opened or saved
  const [savedName, setSavedName] = useState<string | null>(null); // its name
  const [schedule, setSchedule] = useState<Schedule | null>(null);
  const [scheduleError, setScheduleError] = useState<string | null>(null);
  const clipboard = useRef<Canvas | null>(null);

  const info = useCallback((text: string) => setStatus({ kind: "info", text }), []);
  const fail = useCallback((text: string) => setStatus({ kind: "error", text }), []);
  const run = useRun(api, fail);
  const { clear: clearRun, follow } = run;

  const catalogue = useMemo(() => catalogueOf(stages), [stages]);

  /** The workflow's schedule for the bar's badge; a failure to read it only leaves the badge out. */
  const loadSchedule = useCallback(
    (wanted: string) => {
      api.schedule(wanted).then(setSchedule, () => setSchedule(null));
    },
    [api],
  );

  const refreshList = useCallback(() => api.workflows().then(setWorkflows, (e: Error) => fail(e.message)), [api, fail]);

  const open = useCallback(
    async (wanted: string, version?: number) => {
      try {
        const found = await api.workflow(wanted, version);
        const loaded = fromWorkflowFile(found.workflow);
        const openedName = found.workflow.name || wanted;
        reset(loaded);
        setName(openedName);
        setDescription(loaded.description);
        setSavedJson(JSON.stringify(toWorkflowFile(loaded, openedName, loaded.description)));
        setSavedName(openedName);
        setSchedule(null);
        loadSchedule(openedName);
        setErrors({});
        setSelectedId(null);
        clearRun();
        setHashWorkflow(openedName);
        info(`opened ${wanted} v${found.version}`);
        window.requestAnimationFrame(() => void flow.fitView(FIT));
      } catch (e) {
        fail((e as Error).message);
      }
    },
    [api, clearRun, fail, flow, info, loadSchedule, reset],
  );

  useEffect(() => {
    api.stages().then(setStages, (e: Error) => fail(e.message));
    void refreshList();
    const remembered = hashWorkflow();
    if (remembered) void open(remembered);
  }, [api, fail, open, refreshList]);

  // --- editing ---------------------------------------------------------------------------------------
  const addNode = useCallback(
    (stage: string, position = flow.screenToFlowPosition({ x: window.innerWidth / 2, y: window.innerHeight / 2 })) => {
      change((c) => {
        const id = uniqueId(stage, new Set(c.nodes.map((n) => n.id)));
        return { ...c, nodes: [...c.nodes, { id, type: stage, position, data: { params: {} } }] };
      });
    },
    [change, flow],
  );

  const onDrop = useCallback(
    (event: DragEvent) => {
      event.preventDefault();
      const stage = event.dataTransfer.getData(STAGE_MIME);
      if (edit && stage) addNode(stage, flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [addNode, edit, flow],
  );

  const isValidConnection = useCallback(
    (link: Link) => connectionProblem(link, current.current.nodes, current.current.edges, catalogue) === null,
    [catalogue, current],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      change((canvas) => ({
        ...canvas,
        edges: [...canvas.edges, makeEdge(c.source, c.sourceHandle ?? "", c.target, c.targetHandle ?? "")],
      }));
      info(`connected ${c.source}.${c.sourceHandle} → ${c.target}.${c.targetHandle}`);
    },
    [change, info],
  );

  const onConnectEnd = useCallback(
    (_: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      const link = linkOf(state);
      if (!link || state.isValid) return;
      const problem = connectionProblem(link, current.current.nodes, current.current.edges, catalogue);
      if (problem) fail(`refused: ${problem}`);
    },
    [catalogue, current, fail],
  );

  const rename = useCallback(
    (from: string, to: string) => {
      change((c) => renameNode(c, from, to));
      setSelectedId(to);
      setErrors(({ [from]: _, ...rest }) => rest);
    },
    [change],
  );

  const setParams = useCallback(
    (id: string, params: Params) => {
      const node = current.current.nodes.find((n) => n.id === id);
      if (!node || JSON.stringify(node.data.params) === JSON.stringify(params)) return;
      change(
        (c) => ({ ...c, nodes: c.nodes.map((n) => (n.id === id ? { ...n, data: { ...n.data, params } } : n)) }),
        `params:${id}`,
      );
    },
    [change, current],
  );

  /** Upload a data file and point the node's source at it (the file's kind from its suffix). */
  const upload = useCallback(
    (id: string, picked: File) => {
      const kind = uploadKind(picked.name);
      if (!kind) {
        fail(`${picked.name}: upload a .csv or a .jsonl file`);
        return;
      }
      api.uploadData(picked.name, picked, kind.type).then(
        (done) => {
          const node = current.current.nodes.find((n) => n.id === id);
          if (node) setParams(id, withUploadedSource(node.data.params, done.path, kind.kind));
          const columns = done.columns.join(", ");
          info(
            `uploaded ${done.path}: ${done.rows} rows (${columns})${done.replaced ? ", replacing the earlier file" : ""}`,
          );
        },
        (e: unknown) => fail((e as Error).message),
      );
    },
    [api, current, fail, info, setParams],
  );

  const layout = useCallback(() => {
    change((c) => ({ ...c, nodes: autoLayout(c, sizeFor(catalogue)) }));
    window.requestAnimationFrame(() => void flow.fitView(FIT));
  }, [catalogue, change, flow]);

  useKeys({
    undo: () => edit && editor.undo(),
    redo: () => edit && editor.redo(),
    copy: () => {
      clipboard.current = copySelection(current.current);
      if (clipboard.current.nodes.length) info(`copied ${clipboard.current.nodes.length} node(s)`);
    },
    paste: () => {
      const clip = clipboard.current;
      if (edit && clip?.nodes.length) change((c) => paste(c, clip));
    },
  });

  // --- the API -----------------------------------------------------------------------------------------
  const file = useCallback(() => toWorkflowFile(current.current, name, description), [current, name, description]);

  /** An API error in the status line, and on its nodes when it names some (a refused save or run). */
  const report = useCallback(
    (e: unknown) => {
      if (e instanceof ApiError && e.nodeErrors.length) setErrors(byNode(e.nodeErrors).nodes);
      fail((e as Error).message);
    },
    [fail],
  );

  /** Save the canvas; the saved version, or null (the reason is in the status line). */
  const save = useCallback(async (): Promise<number | null> => {
    if (!WORKFLOW_NAME_PATTERN.test(name)) {
      const rule = "lower-case letters, digits and -, starting with a letter or digit (63 at most)";
      fail(name ? `'${name}' is not a workflow name: ${rule}` : `name the workflow first: ${rule}`);
      return null;
    }
    try {
      const saving = file();
      const saved = await api.save(saving);
      setSavedJson(JSON.stringify(saving));
      if (name !== savedName) {
        setSchedule(null);
        loadSchedule(name);
      }
      setSavedName(name);
      setHashWorkflow(name);
      setErrors({});
      info(saved.unchanged ? `${name} unchanged (v${saved.version})` : `saved ${name} v${saved.version}`);
      void refreshList();
      return saved.version;
    } catch (e) {
      report(e);
      return null;
    }
  }, [api, file, info, loadSchedule, name, refreshList, report, savedName]);

  const act = useCallback(
    (action: () => Promise<void>) => async () => {
      setBusy(true);
      try {
        await action();
      } catch (e) {
        report(e);
      } finally {
        setBusy(false);
      }
    },
    [report],
  );

  const dryRun = act(async () => {
    const result = await api.check(file());
    const found = byNode(result.errors);
    setErrors(found.nodes);
    if (result.ok) info("dry run: no problems");
    else fail(`dry run: ${result.errors.length} problem(s)${found.other.length ? `: ${found.other.join("; ")}` : ""}`);
  });

  const startRun = act(async () => {
    const version = await save();
    if (version === null) return;
    const job = await api.run(name, version);
    info(`run ${job.id} of ${name} v${version} started`);
    follow(job.id);
  });

  const retry = act(async () => {
    const id = run.run?.run.id;
    if (!id) return;
    const job = await api.retry(id);
    info(`run ${job.id} of ${name} retried: finished nodes are reused`);
    follow(job.id, job);
  });

  /** A schedule refusal in the dialog and the status line (and on the nodes it names). */
  const scheduleAct = (action: () => Promise<void>) =>
    act(async () => {
      setScheduleError(null);
      try {
        await action();
      } catch (e) {
        setScheduleError((e as Error).message);
        throw e;
      }
    });

  const setCron = (cron: string, timezone: string) =>
    void scheduleAct(async () => {
      if (dirty && (await save()) === null) {
        setScheduleError("the workflow could not be saved: see the status line");
        return;
      }
      const set = await api.setSchedule(name, cron, timezone);
      setSchedule(set);
      info(`${name} scheduled: ${set.cron} (${set.timezone}), v${set.version}`);
    })();

  const removeCron = () =>
    void scheduleAct(async () => {
      const target = savedName ?? name;
      await api.unschedule(target);
      setSchedule(null);
      info(`${target} no longer scheduled`);
    })();

  const exportCode = act(async () => {
    if (edit && (await save()) === null) return;
    setDialog(await api.exportCode(name));
  });

  const importFile = useCallback(
    (picked: File) => {
      picked.text().then(
        (text) => {
          try {
            const loaded = fromWorkflowFile(JSON.parse(text));
            change(() => ({ nodes: loaded.nodes, edges: loaded.edges }));
            if (loaded.name) setName(loaded.name);
            setDescription(loaded.description);
            setErrors({});
            clearRun();
            info(`imported ${picked.name}: save to keep it`);
            window.requestAnimationFrame(() => void flow.fitView(FIT));
          } catch (e) {
            fail(`import of ${picked.name}: ${(e as Error).message}`);
          }
        },
        (e: Error) => fail(e.message),
      );
    },
    [change, clearRun, fail, flow, info],
  );

  const finished = run.run && isFinal(run.run.run.state) ? run.run.run : null;
  const finishedNodes = useRef(run.run?.nodes);
  finishedNodes.current = run.run?.nodes;
  useEffect(() => {
    if (!finished) return;
    const text = runLine(finished, finishedNodes.current);
    if (finished.state === "COMPLETED") info(text);
    else fail(text);
  }, [finished, info, fail]);

  // The side panel opening (or a window resize) narrows the canvas: refit when that would hide nodes that were
  // all in view (React Flow keeps the viewport's top-left corner, and renders only the nodes in view).
  const pane = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = pane.current;
    if (!element || typeof ResizeObserver === "undefined") return;
    let size = { width: element.clientWidth, height: element.clientHeight };
    const observer = new ResizeObserver(() => {
      const before = size;
      size = { width: element.clientWidth, height: element.clientHeight };
      const nodes = flow.getNodes();
      if (!nodes.length || before.width === 0 || before.height === 0) return;
      if (needsRefit(flow.getNodesBounds(nodes), flow.getViewport(), before, size)) void flow.fitView(FIT);
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, [flow]);

  // --- what the canvas shows ---------------------------------------------------------------------------
  const runNodes = run.run?.nodes;
  const runMessage = run.run?.run.message;
  // A node with an overlay is a new object only when the node or its overlay changed, so that the memoised node
  // components of a big canvas do not all re-render on every drag frame during a run.
  const overlaid = useRef(new WeakMap<CanvasNode, { key: string; node: ShownNode }>());
  const shownNodes = useMemo<ShownNode[]>(
    () =>
      canvas.nodes.map((n) => {
        const error = errors[n.id];
        if (!runNodes && !error) return n;
        const state = runNodes ? (runNodes[n.id]?.state ?? "pending").toLowerCase() : undefined;
        const badge = runNodes ? nodeBadge(runNodes[n.id]) : undefined;
        const rows = runNodes ? nodeRows(n.id, canvas.edges, runNodes) : undefined;
        const failure = runNodes ? nodeFailure(runNodes[n.id], runMessage)?.message : undefined;
        const key = JSON.stringify([error, state, badge, rows, failure]);
        const cached = overlaid.current.get(n);
        if (cached?.key === key) return cached.node;
        const node = { ...n, data: { ...n.data, error, state, badge, rows, failure } };
        overlaid.current.set(n, { key, node });
        return node;
      }),
    [canvas, errors, runNodes, runMessage],
  );

  // One node type per stage; stages the catalogue lacks (an imported file's) too, drawn as unknown.
  const unknown = [...new Set(canvas.nodes.map((n) => n.type ?? ""))]
    .filter((t) => !catalogue.has(t))
    .sort()
    .join(" ");
  const nodeTypes = useMemo(
    () => Object.fromEntries([...catalogue.keys(), ...unknown.split(" ").filter(Boolean)].map((t) => [t, StageNode])),
    [catalogue, unknown],
  );

  const dirty = useMemo(
    () => canvas.nodes.length > 0 && JSON.stringify(toWorkflowFile(canvas, name, description)) !== savedJson,
    [canvas, name, description, savedJson],
  );
  const selected = canvas.nodes.find((n) => n.id === selectedId);
  const taken = useMemo(() => new Set(canvas.nodes.map((n) => n.id)), [canvas.nodes]);

  return (
    <CatalogueContext.Provider value={catalogue}>
      <div className="workspace">
        <WorkflowBar
          session={session}
          name={name}
          onName={setName}
          description={description}
          onDescription={setDescription}
          dirty={dirty}
          workflows={workflows}
          canUndo={editor.canUndo}
          canRedo={editor.canRedo}
          busy={busy}
          runState={run.run?.run.state?.toLowerCase() ?? null}
          retriable={canRetry(run.run?.run.state)}
          runLink={run.run?.links?.prefect ?? null}
          savedName={savedName}
          schedule={schedule}
          actions={{
            open: (n) => void open(n),
            save: () => void save(),
            dryRun: () => void dryRun(),
            run: () => void startRun(),
            layout,
            undo: editor.undo,
            redo: editor.redo,
            versions: () => setDialog("versions"),
            schedule: () => {
              setScheduleError(null);
              setDialog("schedule");
              if (savedName) loadSchedule(savedName);
            },
            retry: () => void retry(),
            exportFile: () =>
              download(`${name || "workflow"}.json`, JSON.stringify(file(), null, 2), "application/json"),
            importFile,
            exportCode: () => void exportCode(),
            signOut: onSignOut,
          }}
        />
        <div className="main">
          <Palette stages={stages} enabled={edit} onAdd={(stage) => addNode(stage)} />
          <div
            className="canvas"
            ref={pane}
            data-testid="canvas"
            onDragOver={(e) => e.preventDefault()}
            onDrop={onDrop}
          >
            <ReactFlow<ShownNode>
              nodes={shownNodes}
              edges={canvas.edges}
              nodeTypes={nodeTypes}
              onNodesChange={editor.onNodesChange}
              onEdgesChange={editor.onEdgesChange}
              onConnect={onConnect}
              onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection}
              onNodeDragStart={editor.mark}
              onBeforeDelete={async () => {
                editor.mark();
                return true;
              }}
              onNodeClick={(_, node) => setSelectedId(node.id)}
              onPaneClick={() => setSelectedId(null)}
              nodesDraggable={edit}
              nodesConnectable={edit}
              deleteKeyCode={edit ? DELETE_KEYS : null}
              onlyRenderVisibleElements
              // No fitView on mount: the canvas starts empty, and the view would jump to centre the first node
              // dropped (under the pointer no more); opening, importing and Layout fit the view themselves.
              minZoom={0.05}
            >
              <Background />
              <Controls showInteractive={false} />
              <MiniMap pannable zoomable />
            </ReactFlow>
            {canvas.nodes.length === 0 && (
              <div className="empty-hint" data-testid="empty-hint">
                <h2>An empty canvas</h2>
                <p>
                  {edit
                    ? "Drag a stage from the palette on the left (or double-click it), then connect an output port to an input port of the same type."
                    : "Your role can read workflows but not edit them."}
                </p>
                {workflows.length > 0 ? (
                  <>
                    <p>Or start from a saved workflow or a starter:</p>
                    <ul className="gallery">
                      {workflows.slice(0, 8).map((w) => (
                        <li key={w.name}>
                          <button data-testid={`starter-${w.name}`} onClick={() => void open(w.name)}>
                            {w.name}
                          </button>
                          <span>{w.description}</span>
                        </li>
                      ))}
                    </ul>
                  </>
                ) : (
                  <p>Or open a saved workflow from the “Open…” list above.</p>
                )}
              </div>
            )}
          </div>
          {selected && (
            <SidePanel
              node={selected}
              stage={catalogue.get(selected.type ?? "")}
              canEdit={edit}
              error={errors[selected.id]}
              run={runNodes?.[selected.id]}
              failure={runNodes ? nodeFailure(runNodes[selected.id], runMessage) : null}
              rows={runNodes ? nodeRows(selected.id, canvas.edges, runNodes) : undefined}
              taken={taken}
              onRename={rename}
              onParams={setParams}
              onUpload={upload}
              onClose={() => setSelectedId(null)}
            />
          )}
        </div>
        <footer className={`status ${status.kind}`} data-testid="status" role="status">
          {status.text}
        </footer>
        {dialog === "versions" && (
          <VersionsDialog
            api={api}
            name={name}
            onOpen={(version) => {
              setDialog(null);
              void open(name, version);
            }}
            onError={fail}
            onClose={() => setDialog(null)}
          />
        )}
        {dialog === "schedule" && (
          <ScheduleDialog
            key={schedule?.deployment_id ?? "none"}
            name={savedName ?? name}
            schedule={schedule}
            canEdit={edit}
            busy={busy}
            error={scheduleError}
            onSet={setCron}
            onRemove={removeCron}
            onClose={() => setDialog(null)}
          />
        )}
        {dialog && typeof dialog === "object" && (
          <Dialog title={dialog.filename} onClose={() => setDialog(null)}>
            <button data-testid="download-code" onClick={() => download(dialog.filename, dialog.code, "text/x-python")}>
              Download
            </button>
            <pre className="code" data-testid="code">
              {dialog.code}
            </pre>
          </Dialog>
        )}
      </div>
    </CatalogueContext.Provider>
  );
}
