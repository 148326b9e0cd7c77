/**
 * What an agent would make of a mesh file, without a kernel: the schema and
 * cross-checks, the agent settings it carries, and whether its services fit
 * the kernel tables of this build - so a file can be checked in CI before it
 * reaches a node. Pure apart from the table sizes, which the caller reads.
 */
import { parseAllDocuments, parseDocument, isMap, isScalar, LineCounter, Scalar } from 'yaml';
import { formatConfigIssue, formatSettingsIssue, type SourcePosition } from '../config/errors';
import { parseMesh } from '../config/load';
import { mergeSettings } from '../config/settings';
import { capacityError, freshPeak, overflows, TableRoom } from '../dataplane/capacity';
import { desiredOf, underCgroup } from './compile';
import { refusingPorts } from '../dataplane/desired';

export type MeshCheck =
  | {
    file: string;
    valid: true;
    services: number;
    /** dataplane services: one per service port and address family */
    servicePorts: number;
    frontends: number;
    backends: number;
    slots: number;
    workloads: number;
    room: TableRoom;
    /** What the agent would apply but warn about: workloads its cgroupRoot (as the file sets it) does not enroll. */
    warnings: string[];
  }
  | { file: string; valid: false; errors: string[] };

/** Where an embedded mesh's text starts in the file that carries it: issue positions are moved by this. */
export interface TextOrigin {
  /** lines before the mesh text's first line */
  lines: number;
  /** columns before each of its lines (a YAML literal block's indentation) */
  columns: number;
}

/**
 * `file` labels the result; `positionsIn` (default `file`) is the file the
 * positions of the issues point into, moved by `origin` for a mesh embedded
 * in a bigger file (a ConfigMap).
 */
export function checkMesh(text: string, file: string, room: TableRoom, origin?: TextOrigin & { positionsIn: string }): MeshCheck {
  const moved = <T extends SourcePosition>(p: T): T =>
    (origin ? { ...p, file: origin.positionsIn, line: p.line + origin.lines, column: p.column + origin.columns } : p);
  const parsed = parseMesh(text, file);
  if (!parsed.ok) return { file, valid: false, errors: parsed.issues.map((i) => formatConfigIssue(moved(i))) };
  // The file's own agent settings; flags and environment belong to the node.
  const settings = mergeSettings({ flags: {}, env: {}, file: parsed.agentLayer });
  if (!settings.ok) return { file, valid: false, errors: settings.issues.map((i) => formatSettingsIssue(i.origin === 'file' ? moved(i) : i)) };
  const desired = desiredOf(parsed.config);
  const peak = freshPeak(desired);
  const over = overflows(peak, room);
  if (over.length) return { file, valid: false, errors: [`${file}: ${capacityError(over).message}`] };
  const root = settings.settings.cgroupRoot;
  const warnings = [...refusingPorts(desired), ...parsed.config.workloads.filter((w) => !underCgroup(w.cgroup, root)).map((w) =>
    `workload ${w.namespace}/${w.name}: cgroup ${w.cgroup} is outside cgroupRoot ${root} (as this file sets it): not enrolled, no VIPs and no telemetry`)];
  return {
    file,
    valid: true,
    services: parsed.config.services.length,
    servicePorts: desired.length,
    frontends: peak.addedFrontends,
    backends: parsed.config.services.reduce((n, s) => n + s.backends.length, 0),
    slots: peak.newSlots,
    workloads: parsed.config.workloads.length,
    room,
    warnings,
  };
}

/** A mesh file carried in a Kubernetes ConfigMap of a manifest, or why a document of it could not be read. */
export type EmbeddedMesh =
  | {
    /** "sockmesh.yaml: ConfigMap sockmesh/sockmesh-mesh, mesh.yaml" */
    label: string;
    text: string;
    /** set for a literal block (`key: |`), whose lines map one to one onto the manifest's */
    origin?: TextOrigin;
  }
  | { label: string; error: string };

/** Whether a data value is a mesh file: its top-level kind, however quoted or commented. */
function isMeshText(value: string): boolean {
  if (!/^kind:/m.test(value)) return false;
  const doc = parseDocument(value);
  // Unparsable, yet it says it is a mesh: check it, so that its errors are shown rather than skipped.
  if (doc.errors.length > 0) return /^kind:\s*(["']?)Mesh\1\s*(#.*)?$/m.test(value);
  return isMap(doc.contents) && doc.get('kind') === 'Mesh';
}

/**
 * The mesh files in a manifest: every ConfigMap data value that is a
 * sockmesh Mesh, and each document of it that is not YAML (it could be
 * one). Undefined when `text` is one document that is no ConfigMap: a mesh
 * file itself, or nothing `validate` knows.
 */
export function embeddedMeshes(text: string, file: string): EmbeddedMesh[] | undefined {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter });
  if (!Array.isArray(docs)) return undefined;
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const maps = docs.filter((d) => d.errors.length === 0 && d.get('kind') === 'ConfigMap');
  if (docs.length <= 1 && maps.length === 0) return undefined;
  const out: EmbeddedMesh[] = [];
  for (const [i, d] of docs.entries()) {
    if (d.errors.length > 0) {
      out.push({ label: `${file}: document ${i + 1}`, error: `${at(d.errors[0]!.pos[0])} YAML: ${d.errors[0]!.message.split('\n')[0]}` });
    } else if (d.get('kind') === 'Mesh' && maps.length === 0) {
      out.push({ label: file, error: `${at(d.range[0])} YAML: a mesh file is one document; ${file} has ${docs.length} (\`---\` lines): remove the extra ones, or split the file` });
      break;
    }
  }
  for (const d of maps) {
    const data = d.get('data', true);
    if (!isMap(data)) continue;
    const meta = d.get('metadata', true);
    const name = isMap(meta) ? `${String(meta.get('namespace') ?? 'default')}/${String(meta.get('name') ?? '?')}` : '?';
    for (const pair of data.items) {
      if (!isScalar(pair.value) || typeof pair.value.value !== 'string' || !isMeshText(pair.value.value)) continue;
      const body = pair.value.value;
      out.push({ label: `${file}: ConfigMap ${name}, ${String(isScalar(pair.key) ? pair.key.value : pair.key)}`, text: body, ...literalOrigin(text, pair.value, lineCounter) });
    }
  }
  return out;
}

/** For `key: |` blocks: the header's line, and the indentation of the first content line. */
function literalOrigin(text: string, node: Scalar, lc: LineCounter): { origin?: TextOrigin } {
  if (node.type !== Scalar.BLOCK_LITERAL || !node.range) return {};
  const header = lc.linePos(node.range[0]).line;
  const firstContent = text.split('\n').slice(header).find((l) => l.trim() !== '');
  if (firstContent === undefined) return {};
  return { origin: { lines: header, columns: firstContent.length - firstContent.trimStart().length } };
}
