/**
 * The workload of a cgroup id: any cgroup in a workload's subtree, the
 * deepest workload where they nest, and cgroups that appear later - over a
 * plain directory tree (a cgroup id is the directory's inode number).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkloadCgroups } from '../../../src/platform/workload-cgroups';

function tree(t: { after: (fn: () => void) => void }): { root: string; mk: (rel: string) => number } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-wlcg-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const mk = (rel: string): number => {
    fs.mkdirSync(path.join(root, rel), { recursive: true });
    return Number(fs.statSync(path.join(root, rel), { bigint: true }).ino);
  };
  return { root, mk };
}

test('every cgroup below a workload\'s is that workload; a nested workload takes its own subtree', (t) => {
  const { root, mk } = tree(t);
  const pod = mk('kubepods/pod-a');
  const ctr = mk('kubepods/pod-a/cri-1');
  const deep = mk('kubepods/pod-a/cri-1/sub/deeper');
  const side = mk('kubepods/pod-a/sidecar');
  const sideChild = mk('kubepods/pod-a/sidecar/x');
  const other = mk('kubepods/pod-b');
  fs.writeFileSync(path.join(root, 'kubepods/pod-a/cgroup.procs'), ''); // files are not cgroups
  const idx = new WorkloadCgroups(root, [
    { cgroup: 'kubepods/pod-a/sidecar', workload: 'sidecar' },
    { cgroup: 'kubepods/pod-a', workload: 'a' },
  ]);
  assert.deepEqual([pod, ctr, deep].map((id) => idx.lookup(id)), ['a', 'a', 'a']);
  assert.deepEqual([side, sideChild].map((id) => idx.lookup(id)), ['sidecar', 'sidecar']);
  assert.equal(idx.lookup(other), undefined);
  assert.equal(idx.size, 6, 'pod-a, cri-1, sub, deeper, sidecar, x');
});

test('a cgroup that appears later is found by the lookup that meets it; an id outside every workload costs one walk', (t) => {
  const { root, mk } = tree(t);
  mk('w');
  const idx = new WorkloadCgroups(root, [{ cgroup: 'w', workload: 'w' }, { cgroup: 'late', workload: 'late' }]);
  assert.equal(idx.scans, 1);
  const first = mk('w/new-1');
  const second = mk('late/worker');
  assert.equal(idx.lookup(first), 'w', 'walked again on the miss');
  assert.equal(idx.lookup(second), 'late', 'found by that same walk');
  assert.equal(idx.scans, 2);
  const stray = mk('elsewhere');
  assert.equal(idx.lookup(stray), undefined);
  assert.equal(idx.lookup(stray), undefined);
  assert.equal(idx.scans, 3, 'the stray id walked once, then remembered as outside');
});

test('without workloads nothing is scanned and every id is unknown', (t) => {
  const { root, mk } = tree(t);
  const idx = new WorkloadCgroups(root, []);
  assert.equal(idx.lookup(mk('x')), undefined);
  assert.equal(idx.scans, 1, 'no walk for a lookup when no workload has a cgroup');
});
