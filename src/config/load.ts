/**
 * Mesh file → MeshConfig. YAML is parsed into a document that keeps source
 * ranges, so every issue (syntax, schema, cross-field) can name the line and
 * column to fix; validation itself works on plain values (schema.ts).
 */
import fs from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { ConfigError, type ConfigIssue, type SourcePosition } from './errors';
import type { MeshConfig } from './model';
import { formatPath, validateMesh, type Path, type PathIssue } from './schema';
import { readFileLayer, type FileLayer } from './settings';

export type LoadResult =
  | {
    readonly ok: true;
    readonly config: MeshConfig;
    /** The `agent:` section with its positions, for mergeSettings({ file }). */
    readonly agentLayer: FileLayer;
  }
  | {
    readonly ok: false;
    readonly issues: ConfigIssue[];
    /**
     * The `agent:` section when it is itself valid (the rest of the file is
     * not): which instance, cgroup and pins the agent's are does not depend on
     * a typo in a service. Absent when the section, or the YAML around it,
     * cannot be trusted - defaults would then name another instance.
     */
    readonly agentLayer?: FileLayer;
  };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A mesh file's text. YAML is UTF-8: other bytes would come through as
 * U+FFFD inside values ("caf\uFFFD") and fail far from their cause, so they
 * are refused here, at their line. A leading BOM is dropped (editors on
 * Windows write one), so columns count from the first real character.
 * fs errors (ENOENT, EISDIR...) pass through.
 */
export function readMeshText(path: string): string {
  const bytes = fs.readFileSync(path);
  try {
    return utf8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    // Line by line: newlines are single bytes in UTF-8, so a bad sequence lies within one line.
    let line = 1;
    for (let from = 0; from <= bytes.length; line++) {
      let to = bytes.indexOf(0x0a, from);
      if (to < 0) to = bytes.length;
      try {
        utf8.decode(bytes.subarray(from, to));
      } catch {
        break;
      }
      from = to + 1;
    }
    throw new Error(`${path} is not UTF-8 text (line ${line} has bytes that are not): save it as UTF-8`);
  }
}

/** Reads and validates a mesh file. Throws ConfigError listing every issue; fs errors (ENOENT...) pass through. */
export function loadMeshFile(path: string): MeshConfig {
  const result = parseMesh(readMeshText(path), path);
  if (!result.ok) throw new ConfigError(result.issues);
  return result.config;
}

/** Validates mesh YAML; `fileName` only labels the issues. */
export function parseMesh(text: string, fileName: string): LoadResult {
  const lineCounter = new LineCounter();
  // prettyErrors off: we print positions our own way, not yaml's multi-line excerpt.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { file: fileName, line, column: col };
  };

  if (text.trim() === '') {
    return { ok: false, issues: [{ ...at(0), path: '', message: 'the file is empty: a mesh file starts with apiVersion: sockmesh.io/v1alpha1 and kind: Mesh (see examples/mesh.yaml)' }] };
  }
  // Warnings too (e.g. an unknown !tag): a value we would read differently than meant.
  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) {
    return { ok: false, issues: syntax.map((e) => ({ ...at(e.pos[0]), path: '', message: yamlMessage(e) })) };
  }

  let plain: unknown;
  try {
    plain = doc.toJS();
  } catch (err) {
    // Alias bombs (too many alias expansions) and unresolved aliases are refused here, not in
    // parsing: point at the first alias with no anchor before it, if that is what it was.
    let where = 0;
    visit(doc, {
      Alias(_key, node) {
        if (node.resolve(doc) !== undefined || !node.range) return undefined;
        where = node.range[0];
        return visit.BREAK;
      },
    });
    return { ok: false, issues: [{ ...at(where), path: '', message: `YAML: ${err instanceof Error ? err.message : String(err)}` }] };
  }

  const mesh = validateMesh(plain);
  const agent = readFileLayer(mesh.agent);
  const issues: PathIssue[] = [...mesh.issues, ...agent.issues.map((i) => ({ ...i, path: ['agent', ...i.path] }))];
  const agentLayer: FileLayer = { values: mesh.agent, source: (path) => at(offsetOf(doc, path, false)), at: ['agent'] };
  if (issues.length > 0 || !mesh.mesh) {
    const located = issues.map((i): ConfigIssue => ({ ...at(offsetOf(doc, i.path, i.atKey === true)), path: formatPath(i.path), message: i.message }));
    // In file order, which is how one fixes them.
    located.sort((a, b) => a.line - b.line || a.column - b.column);
    // A document that is no mapping (an emptied ConfigMap) may have lost its agent: section too.
    const agentKnown = isMap(doc.contents) && agent.issues.length === 0;
    return { ok: false, issues: located, ...(agentKnown ? { agentLayer } : {}) };
  }
  return { ok: true, config: { ...mesh.mesh, agent: agent.values }, agentLayer };
}

/** The parser's message, without the excerpt prettyErrors would add anyway, and in our words where theirs name their API. */
function yamlMessage(e: { code: string; message: string }): string {
  if (e.code === 'MULTIPLE_DOCS') return 'YAML: a mesh file is one document; a second one starts here (a `---` line): remove it, or split the file';
  return `YAML: ${e.message}`;
}

/**
 * Where `path` is in the document: its value's first character, or its key's
 * with `atKey`. A path that does not exist (a missing field) resolves to its
 * nearest existing ancestor, which is where the field is missing from. An
 * alias is not followed: the place to look is where it is used.
 */
function offsetOf(doc: Document, path: Path, atKey: boolean): number {
  let node: unknown = doc.contents;
  let best = startOf(node) ?? 0;
  for (const [i, seg] of path.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyStart = startOf(pair.key) ?? best;
      // `key:` with nothing after it has a zero-length value at the line's end: the key reads better.
      const empty = isScalar(pair.value) && pair.value.range !== undefined && pair.value.range !== null && pair.value.range[0] === pair.value.range[1];
      if ((atKey && i === path.length - 1) || pair.value === null || empty) return keyStart;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else {
      break;
    }
    best = startOf(node) ?? best;
  }
  return best;
}

function startOf(node: unknown): number | undefined {
  if (typeof node !== 'object' || node === null || !('range' in node)) return undefined;
  const range: unknown = node.range;
  return Array.isArray(range) && typeof range[0] === 'number' ? range[0] : undefined;
}
