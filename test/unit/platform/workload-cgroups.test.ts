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
  assert.equal(idx.lookup(mk('w/before')), 'w', 'the first lookup walks');
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
  assert.equal(idx.scans, 0, 'no walk for a lookup when no workload has a cgroup');
});

/** inotify reports asynchronously: polls until the index has caught up. */
async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('followed: a cgroup made and removed before any lookup is still its workload\'s, until keepGoneMs after it went', async (t) => {
  const { root, mk } = tree(t);
  mk('w');
  let clock = 1_000_000;
  const idx = new WorkloadCgroups(root, [{ cgroup: 'w', workload: 'w' }], { keepGoneMs: 60_000, now: () => clock });
  t.after(() => idx.close());
  assert.equal(idx.scans, 0, 'made without a walk');
  idx.follow();
  assert.equal(idx.scans, 1, 'follow() walks once, setting its watches on the way');
  assert.equal(idx.followed, 1);
  const job = mk('w/job');
  const step = mk('w/job/step');
  await until(() => idx.size === 3, 'w, job and step indexed');
  fs.rmSync(path.join(root, 'w/job'), { recursive: true });
  await until(() => idx.followed === 1, 'the removed directories no longer followed');
  const scans = idx.scans;
  assert.equal(idx.lookup(job), 'w', 'a short-lived container: gone before its records were read');
  assert.equal(idx.lookup(step), 'w');
  assert.equal(idx.scans, scans, 'known without a walk');
  // What the walk alone knows: nothing of a cgroup already gone.
  const unfollowed = new WorkloadCgroups(root, [{ cgroup: 'w', workload: 'w' }]);
  assert.equal(unfollowed.lookup(job), undefined);
  clock += 60_001;
  assert.equal(idx.lookup(job), undefined, 'forgotten keepGoneMs after it went');
});

test('followed: a workload cgroup made after follow() is found from its nearest existing ancestor', async (t) => {
  const { root, mk } = tree(t);
  mk('kubepods');
  const idx = new WorkloadCgroups(root, [{ cgroup: 'kubepods/burstable/pod-x', workload: 'x' }]);
  t.after(() => idx.close());
  idx.follow();
  assert.equal(idx.size, 0);
  const scans = idx.scans;
  const pod = mk('kubepods/burstable/pod-x');
  const ctr = mk('kubepods/burstable/pod-x/cri-1');
  mk('kubepods/burstable/pod-y/cri-2'); // no workload: not indexed
  await until(() => idx.size === 2, 'pod-x and its container indexed');
  assert.equal(idx.lookup(pod), 'x');
  assert.equal(idx.lookup(ctr), 'x');
  assert.equal(idx.scans, scans, 'found by following, not by a walk');
});

test('followed: a cgroup removed and made again under the same name is the workload\'s under both ids; close() stops following', async (t) => {
  const { root, mk } = tree(t);
  mk('w');
  const idx = new WorkloadCgroups(root, [{ cgroup: 'w', workload: 'w' }]);
  t.after(() => idx.close());
  idx.follow();
  const first = mk('w/c');
  await until(() => idx.size === 2, 'w/c indexed');
  // Held open, the removed directory keeps its inode: a plain file system would hand it to the new one (cgroupfs ids are never reused).
  const held = fs.openSync(path.join(root, 'w/c'), 'r');
  t.after(() => fs.closeSync(held));
  fs.rmdirSync(path.join(root, 'w/c'));
  const second = mk('w/c');
  assert.notEqual(first, second);
  await until(() => idx.size === 3, 'the new w/c indexed, the old one kept');
  assert.deepEqual([idx.lookup(first), idx.lookup(second)], ['w', 'w']);
  idx.close();
  idx.close();
  assert.equal(idx.followed, 0);
  const later = mk('w/later');
  const scans = idx.scans;
  assert.equal(idx.lookup(later), 'w', 'no longer followed: the miss walks, as before follow()');
  assert.equal(idx.scans, scans + 1);
});

test('a directory that cannot be watched (inotify limit) is said once; lookups still walk on a miss', (t) => {
  const { root, mk } = tree(t);
  mk('w/a');
  mk('w/b');
  const errors: Error[] = [];
  const idx = new WorkloadCgroups(root, [{ cgroup: 'w', workload: 'w' }], {
    watch: () => {
      throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
    },
  });
  idx.follow((err) => errors.push(err));
  assert.equal(errors.length, 1, 'three directories refused, said once');
  assert.match(errors[0]!.message, /ENOSPC/);
  assert.equal(idx.followed, 0);
  assert.equal(idx.lookup(mk('w/c')), 'w', 'found by a walk');
  idx.close();
});
