/**
 * The mesh file loaded in a worker thread gives what the synchronous loader
 * gives (Buffers included), fails the same ways, and leaves the calling
 * thread free while it parses.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { servicePorts } from '../../../src/agent/compile';
import { loadMeshOffThread, reviveBuffers } from '../../../src/agent/load-mesh';
import { repoRoot } from '../../../src/bpf/native';
import { ConfigError } from '../../../src/config/errors';
import { loadMeshFile } from '../../../src/config/load';
import { desiredState } from '../../../src/dataplane/desired';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-load-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the example mesh: the same config and desired state as on this thread, addresses as Buffers', async () => {
  const file = path.join(repoRoot, 'examples', 'mesh.yaml');
  const { config, desired } = await loadMeshOffThread(file);
  const sync = loadMeshFile(file);
  assert.deepEqual(config, sync);
  assert.deepEqual(desired, desiredState(servicePorts(sync)));
  assert.ok(Buffer.isBuffer(config.services[0]!.vips[0]!.bytes));
  assert.ok(Buffer.isBuffer(desired[0]!.frontends[0]!.vip.bytes));
  assert.equal(desired[0]!.backends[0]!.addr.bytes.toString('hex').length, 32, 'Buffer methods work');
});

test('an invalid file rejects with ConfigError and every issue; a missing one with its errno', async (t) => {
  const dir = tmp(t);
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'apiVersion: sockmesh.io/v1alpha1\nkind: Mesh\nservices:\n  - name: x\n    vips: [nope]\n    ports: [{ port: 0 }]\n    backends: []\nworkloads: []\n');
  const sync = (() => {
    try {
      loadMeshFile(bad);
    } catch (err) {
      return err as ConfigError;
    }
    throw new Error('the file should be invalid');
  })();
  await assert.rejects(loadMeshOffThread(bad), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.issues, sync.issues);
    assert.ok(err.issues.length >= 2);
    return true;
  });
  await assert.rejects(loadMeshOffThread(path.join(dir, 'missing.yaml')), (err: unknown) =>
    err instanceof Error && 'code' in err && err.code === 'ENOENT' && /missing\.yaml/.test(err.message));
});

test('this thread keeps running while a big file is parsed', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'big.yaml');
  let y = 'apiVersion: sockmesh.io/v1alpha1\nkind: Mesh\nnetwork:\n  vipCIDRs: [10.96.0.0/12]\nservices:\n';
  for (let i = 0; i < 2000; i++) y += `  - name: s${i}\n    vips: [10.96.${i >> 8}.${i & 255}]\n    ports: [{ port: 80 }]\n    backends: [{ address: 10.1.${i >> 8}.${i & 255} }]\n`;
  fs.writeFileSync(file, `${y}workloads: []\n`);
  // Counted, not timed: a load done on this thread (even behind an await) lets a handful of turns
  // of the event loop through at most; a worker lets them run all along.
  let turns = 0;
  let running = true;
  const spin = (): void => {
    turns++;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  const { desired } = await loadMeshOffThread(file);
  running = false;
  assert.equal(desired.length, 2000);
  t.diagnostic(`event loop turns during the load: ${turns}`);
  assert.ok(turns > 50, `event loop turns during the load: ${turns}`);
});

test('reviveBuffers: Uint8Arrays back to Buffers over the same memory, everything else as it was', () => {
  const u8 = new Uint8Array([1, 2, 3]);
  const out = reviveBuffers({ a: [u8, 'x', 1], m: new Map([['k', { b: u8 }]]), n: null });
  assert.ok(Buffer.isBuffer(out.a[0]));
  assert.equal((out.a[0] as Buffer).buffer, u8.buffer, 'no copy');
  assert.deepEqual(out.a.slice(1), ['x', 1]);
  assert.ok(Buffer.isBuffer(out.m.get('k')!.b));
  assert.equal(out.n, null);
});
