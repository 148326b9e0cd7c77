/**
 * The instance lock with real flock(2) on files of a directory of the
 * test's: exclusive, says who holds it, released by release() and by the
 * holder's death. No root needed.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceLock, InstanceLockedError, LockHolder, lockHeld, lockPath, readHolder, runningAgents } from '../../../src/agent/instance-lock';

const lockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-locks-'));
test.after(() => fs.rmSync(lockDir, { recursive: true, force: true }));

const dir = (tag: string): string => `/sys/fs/bpf/sockmesh/unit-${process.pid}-${tag}`;
const me = (instance: string): LockHolder => ({ pid: process.pid, instance, version: '0.0.0-test', startedAt: '2026-01-01T00:00:00.000Z', apiSocket: `/tmp/${instance}.sock` });

test('a second acquire fails at once, naming the holder; release lets the next one in', async () => {
  const d = dir('second');
  const first = await InstanceLock.acquire(d, me('a'), { lockDir });
  try {
    assert.deepEqual(readHolder(lockPath(d, lockDir)), me('a'), 'the holder wrote who it is');
    assert.equal(lockHeld(d, lockDir), true);
    await assert.rejects(InstanceLock.acquire(d, me('b'), { lockDir }), (err: unknown) => {
      assert.ok(err instanceof InstanceLockedError);
      assert.equal(err.code, 'EINSTANCELOCKED');
      assert.deepEqual(err.holder, me('a'));
      assert.match(err.message, new RegExp(`${d} is in use by agent pid ${process.pid} \\(instance a`));
      assert.match(err.message, /stop that agent first/);
      assert.match(err.message, /sockmesh status --socket \/tmp\/a\.sock/);
      return true;
    });
    // Another directory is another instance.
    const other = await InstanceLock.acquire(dir('other'), me('c'), { lockDir });
    await other.release();
  } finally {
    await first.release();
    await first.release(); // idempotent
  }
  assert.equal(lockHeld(d, lockDir), false);
  const again = await InstanceLock.acquire(d, me('b'), { lockDir });
  assert.deepEqual(readHolder(lockPath(d, lockDir)), me('b'), 'the new holder replaced what the last one wrote');
  await again.release();
});

test('a waiting acquire gets the lock when the holder lets go, and is told once who it waits for', async () => {
  const d = dir('wait');
  const first = await InstanceLock.acquire(d, me('a'), { lockDir });
  const told: (LockHolder | undefined)[] = [];
  setTimeout(() => void first.release(), 300);
  const t0 = Date.now();
  const second = await InstanceLock.acquire(d, me('b'), { waitMs: 5000, onWait: (h) => told.push(h), lockDir });
  await second.release();
  assert.ok(Date.now() - t0 >= 250, 'it waited for the release');
  assert.deepEqual(told, [me('a')]);
});

test('a waiting acquire gives up after waitMs and says it waited', async () => {
  const d = dir('timeout');
  const first = await InstanceLock.acquire(d, me('a'), { lockDir });
  try {
    await assert.rejects(InstanceLock.acquire(d, me('b'), { waitMs: 300, lockDir }), /did not exit within 0\.3 s/);
  } finally {
    await first.release();
  }
});

test('a holder killed with SIGKILL frees the instance at once (the kernel drops its lock)', async () => {
  const d = dir('killed');
  const mod = path.join(__dirname, '..', '..', '..', 'src', 'agent', 'instance-lock.js');
  const script = `const { InstanceLock } = require(${JSON.stringify(mod)});
InstanceLock.acquire(${JSON.stringify(d)}, { pid: process.pid, instance: 'child', version: 'x', startedAt: 'now', apiSocket: '/tmp/child.sock' }, { lockDir: ${JSON.stringify(lockDir)} })
  .then(() => { process.stdout.write('held\\n'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (b: Buffer) => b.toString().includes('held') && resolve());
      child.once('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
    });
    await assert.rejects(InstanceLock.acquire(d, me('b'), { lockDir }), (err: unknown) => err instanceof InstanceLockedError && err.holder?.pid === child.pid);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  }
  const after = await InstanceLock.acquire(d, me('b'), { lockDir });
  await after.release();
});

test('lock files: one per bpffs directory, a readable name, long paths hashed apart; lockHeld makes none', () => {
  assert.equal(lockPath('/sys/fs/bpf/sockmesh/default', '/run/sockmesh/locks'), '/run/sockmesh/locks/%2Fsys%2Ffs%2Fbpf%2Fsockmesh%2Fdefault.lock');
  assert.equal(lockPath('/sys/fs/bpf/sockmesh/./default/'), lockPath('/sys/fs/bpf/sockmesh/default'));
  const long = (c: string): string => `/sys/fs/bpf/${c.repeat(300)}`;
  assert.ok(path.basename(lockPath(long('a'))).length < 255);
  assert.notEqual(lockPath(long('a')), lockPath(long('b')));
  assert.equal(lockHeld(dir('never'), lockDir), false);
  assert.equal(fs.existsSync(lockPath(dir('never'), lockDir)), false);
});

test('a lock directory that cannot be made says where and what the agent needs', async () => {
  const file = path.join(lockDir, 'a-file');
  fs.writeFileSync(file, '');
  await assert.rejects(InstanceLock.acquire(dir('nodir'), me('a'), { lockDir: path.join(file, 'locks') }),
    /cannot take the instance lock in .*a-file\/locks: .*ENOTDIR.*; the agent needs it writable, shared by every agent of the node/);
});

test('runningAgents: holders alive with their socket there, for a client that found none at its own', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-running-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'demo.sock');
  fs.writeFileSync(sock, ''); // where the API socket would be
  const write = (name: string, h: object): void => fs.writeFileSync(path.join(dir, `${name}.lock`), JSON.stringify(h));
  const holder = { version: '0', startedAt: '2026-01-01T00:00:00Z' };
  write('live', { ...holder, pid: process.pid, instance: 'demo', apiSocket: sock });
  write('dead', { ...holder, pid: 2 ** 22 + 1, instance: 'gone', apiSocket: sock }); // above pid_max: no such process
  write('nosock', { ...holder, pid: process.pid, instance: 'nosock', apiSocket: path.join(dir, 'none.sock') });
  fs.writeFileSync(path.join(dir, 'garbage.lock'), 'not json');
  assert.deepEqual(runningAgents(dir).map((h) => h.instance), ['demo']);
  assert.deepEqual(runningAgents(path.join(dir, 'missing')), []);
});
