/**
 * Loads the mesh file in a worker thread. Parsing and validating a big file
 * takes seconds - 10 000 services: 2.5 s, most of it the YAML library - and
 * the agent's one thread is what drains the records ring (a 4 MiB ring holds
 * well under a second of a busy node's connections), answers /metrics and
 * the API. So a reload must not stop it that long: the worker parses,
 * validates and computes the desired state; the agent thread only writes the
 * maps. A worker per load, gone when it has answered.
 *
 * Structured clone turns Buffers (the addresses' bytes) into plain
 * Uint8Arrays; they are made Buffers again here, without a copy.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ConfigError, type ConfigIssue } from '../config/errors';
import type { MeshConfig } from '../config/model';
import type { DesiredService } from '../dataplane/desired';

export type WorkerReply =
  | { kind: 'loaded'; config: MeshConfig; desired: DesiredService[] }
  | { kind: 'invalid'; issues: ConfigIssue[] }
  | { kind: 'failed'; message: string; code?: string };

export interface LoadedMesh {
  config: MeshConfig;
  desired: DesiredService[];
}

/** Throws ConfigError listing every issue; a read error (ENOENT...) as an Error with its code. */
export function loadMeshOffThread(file: string): Promise<LoadedMesh> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'load-mesh.worker.js'), { workerData: { file } });
    let settled = false;
    worker.once('message', (reply: WorkerReply) => {
      settled = true;
      if (reply.kind === 'loaded') resolve({ config: reviveBuffers(reply.config), desired: reviveBuffers(reply.desired) });
      else if (reply.kind === 'invalid') reject(new ConfigError(reply.issues));
      else reject(Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {}));
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the mesh file loader exited (code ${code}) without an answer`));
    });
  });
}

/** Every Uint8Array in a cloned value back to a Buffer over the same memory. */
export function reviveBuffers<T>(value: T): T {
  if (value instanceof Uint8Array) return (Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)) as T;
  if (Array.isArray(value)) return value.map(reviveBuffers) as T;
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, reviveBuffers(v)])) as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = reviveBuffers(v);
    return out as T;
  }
  return value;
}
