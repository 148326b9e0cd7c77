/**
 * doctor's instances row: pinned instances whose agent is gone, told apart
 * from running ones by the agent's instance lock - a real abstract socket
 * read back from /proc/net/unix.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceLock } from '../../../src/agent/instance-lock';
import { checkInstances, listeningAbstractSockets } from '../../../src/doctor/checks';

test('a pinned instance with its agent is ok, one without is a warning with the two ways out', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-inst-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  assert.equal(checkInstances(dir).status, 'ok', 'nothing pinned');
  fs.mkdirSync(path.join(dir, 'live'));
  fs.mkdirSync(path.join(dir, 'stale'));
  fs.writeFileSync(path.join(dir, 'not-an-instance'), '');
  const lock = await InstanceLock.acquire(path.join(dir, 'live'), { pid: process.pid, instance: 'live', version: 'x', startedAt: 'now', apiSocket: '/tmp/x.sock' });
  try {
    const r = checkInstances(dir);
    assert.equal(r.status, 'warn');
    assert.match(r.detail, /^pinned with no agent: stale \(their programs still translate VIPs by their last mesh file; nothing reads their records\); agent running: live$/);
    assert.ok(r.status === 'warn' && r.fix?.includes('--uninstall'));
    fs.rmdirSync(path.join(dir, 'stale'));
    assert.deepEqual([checkInstances(dir).status, checkInstances(dir).detail], ['ok', 'agent running: live']);
  } finally {
    await lock.release();
  }
  assert.equal(checkInstances(dir).status, 'warn', 'the lock gone: the agent is gone');
});

test('/proc/net/unix: only listening abstract sockets, without the "@" and the NUL padding', () => {
  const text = [
    'Num       RefCount Protocol Flags    Type St Inode Path',
    '0000000000000001: 00000002 00000000 00010000 0001 01 11 @sockmesh-agent:/sys/fs/bpf/sockmesh/a@@@@@@',
    '0000000000000002: 00000002 00000000 00000000 0001 03 12 @sockmesh-agent:/sys/fs/bpf/sockmesh/b',
    '0000000000000003: 00000002 00000000 00010000 0001 01 13 /run/sockmesh/default.sock',
    '0000000000000004: 00000002 00000000 00010000 0001 01 14 @with space',
  ].join('\n');
  assert.deepEqual([...listeningAbstractSockets(text)], ['sockmesh-agent:/sys/fs/bpf/sockmesh/a', 'with space']);
});
