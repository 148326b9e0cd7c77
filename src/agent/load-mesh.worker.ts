/**
 * Worker-thread side of loadMeshOffThread (./load-mesh.ts): read, parse and
 * validate the mesh file and compute the dataplane's desired state, then post
 * the result back. Nothing here touches the kernel.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseMesh, readMeshText } from '../config/load';
import { desiredOf } from './compile';
import type { WorkerReply } from './load-mesh';

const { file } = workerData as { file: string };
let reply: WorkerReply;
try {
  const parsed = parseMesh(readMeshText(file), file);
  reply = parsed.ok
    ? { kind: 'loaded', config: parsed.config, desired: desiredOf(parsed.config) }
    : { kind: 'invalid', issues: parsed.issues };
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  reply = { kind: 'failed', message: e.message, ...('code' in e && typeof e.code === 'string' ? { code: e.code } : {}) };
}
parentPort!.postMessage(reply);
