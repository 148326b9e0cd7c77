/**
 * doctor's instances row: pinned instances whose agent is gone, told apart
 * from running ones by the agent's instance lock (a real flock, in a lock
 * directory of the test's).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceLock, lockHeld } from '../../../src/agent/instance-lock';
import { checkInstances } from '../../../src/doctor/checks';

test('a pinned instance with its agent is ok, one without is a warning with the two ways out', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-inst-'));
  const lockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-locks-'));
  t.after(() => [dir, lockDir].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const held = (d: string): boolean => lockHeld(d, lockDir);
  assert.equal(checkInstances(dir, held).status, 'ok', 'nothing pinned');
  fs.mkdirSync(path.join(dir, 'live'));
  fs.mkdirSync(path.join(dir, 'stale'));
  fs.writeFileSync(path.join(dir, 'not-an-instance'), '');
  const lock = await InstanceLock.acquire(path.join(dir, 'live'), { pid: process.pid, instance: 'live', version: 'x', startedAt: 'now', apiSocket: '/tmp/x.sock' }, { lockDir });
  try {
    const r = checkInstances(dir, held);
    assert.equal(r.status, 'warn');
    assert.match(r.detail, /^pinned with no agent: stale \(their programs still translate VIPs by their last mesh file; nothing reads their records\); agent running: live$/);
    assert.ok(r.status === 'warn' && r.fix?.includes('--uninstall'));
    fs.rmdirSync(path.join(dir, 'stale'));
    assert.deepEqual([checkInstances(dir, held).status, checkInstances(dir, held).detail], ['ok', 'agent running: live']);
  } finally {
    await lock.release();
  }
  assert.equal(checkInstances(dir, held).status, 'warn', 'the lock gone: the agent is gone');
  assert.equal(checkInstances(dir, () => { throw new Error('EACCES'); }).status, 'skip', 'cannot tell: says so');
});
