/**
 * The instance lock with real abstract sockets (no root needed): exclusive,
 * says who holds it, released by release() and by the holder's death.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { InstanceLock, InstanceLockedError, LockHolder, lockName, lockOwner } from '../../../src/agent/instance-lock';

const dir = (tag: string): string => `/sys/fs/bpf/sockmesh/unit-${process.pid}-${tag}`;
const me = (instance: string): LockHolder => ({ pid: process.pid, instance, version: '0.0.0-test', startedAt: '2026-01-01T00:00:00.000Z', apiSocket: `/tmp/${instance}.sock` });

test('a second acquire fails at once, naming the holder; release lets the next one in', async () => {
  const d = dir('second');
  const first = await InstanceLock.acquire(d, me('a'));
  try {
    await assert.rejects(InstanceLock.acquire(d, me('b')), (err: unknown) => {
      assert.ok(err instanceof InstanceLockedError);
      assert.equal(err.code, 'EINSTANCELOCKED');
      assert.deepEqual(err.holder, me('a'));
      assert.match(err.message, new RegExp(`${d} is in use by agent pid ${process.pid} \\(instance a`));
      assert.match(err.message, /stop that agent first/);
      assert.match(err.message, /sockmesh status --socket \/tmp\/a\.sock/);
      return true;
    });
    // Another directory is another instance.
    const other = await InstanceLock.acquire(dir('other'), me('c'));
    await other.release();
  } finally {
    await first.release();
    await first.release(); // idempotent
  }
  const again = await InstanceLock.acquire(d, me('b'));
  await again.release();
});

test('a waiting acquire gets the lock when the holder lets go, and is told once who it waits for', async () => {
  const d = dir('wait');
  const first = await InstanceLock.acquire(d, me('a'));
  const told: (LockHolder | undefined)[] = [];
  setTimeout(() => void first.release(), 300);
  const t0 = Date.now();
  const second = await InstanceLock.acquire(d, me('b'), { waitMs: 5000, onWait: (h) => told.push(h) });
  await second.release();
  assert.ok(Date.now() - t0 >= 250, 'it waited for the release');
  assert.deepEqual(told, [me('a')]);
});

test('a waiting acquire gives up after waitMs and says it waited', async () => {
  const d = dir('timeout');
  const first = await InstanceLock.acquire(d, me('a'));
  try {
    await assert.rejects(InstanceLock.acquire(d, me('b'), { waitMs: 300 }), /did not exit within 0\.3 s/);
  } finally {
    await first.release();
  }
});

test('a holder killed with SIGKILL frees the instance at once (the kernel drops its socket)', async () => {
  const d = dir('killed');
  const mod = path.join(__dirname, '..', '..', '..', 'src', 'agent', 'instance-lock.js');
  const script = `const { InstanceLock } = require(${JSON.stringify(mod)});
InstanceLock.acquire(${JSON.stringify(d)}, { pid: process.pid, instance: 'child', version: 'x', startedAt: 'now', apiSocket: '/tmp/child.sock' })
  .then(() => { process.stdout.write('held\\n'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (b: Buffer) => b.toString().includes('held') && resolve());
      child.once('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
    });
    await assert.rejects(InstanceLock.acquire(d, me('b')), (err: unknown) => err instanceof InstanceLockedError && err.holder?.pid === child.pid);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  }
  const after = await InstanceLock.acquire(d, me('b'));
  await after.release();
});

test('lock names fit an abstract socket address, long directories hashed apart', () => {
  assert.equal(lockName('/sys/fs/bpf/sockmesh/default'), '\0sockmesh-agent:/sys/fs/bpf/sockmesh/default');
  assert.equal(lockName('/sys/fs/bpf/sockmesh/./default/'), lockName('/sys/fs/bpf/sockmesh/default'));
  const long = (c: string): string => `/sys/fs/bpf/${c.repeat(120)}`;
  assert.ok(Buffer.byteLength(lockName(long('a'))) <= 108);
  assert.notEqual(lockName(long('a')), lockName(long('b')));
});

test('the kernel says who holds the lock: a squatter is named as what it is, not as what it claims', async () => {
  const d = dir('squat');
  // Binds the lock's name and claims to be an agent with another pid: anything on the node could.
  const script = `const net = require('node:net');
const s = net.createServer((c) => c.end(JSON.stringify({ pid: 1, instance: 'default', version: '9.9.9', startedAt: 'then', apiSocket: '/tmp/fake.sock' })));
s.listen(${JSON.stringify(lockName(d))}, () => process.stdout.write('held\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (b: Buffer) => b.toString().includes('held') && resolve());
      child.once('exit', (code) => reject(new Error(`squatter exited early (${code})`)));
    });
    const owner = lockOwner(lockName(d));
    assert.equal(owner?.pid, child.pid);
    assert.equal(owner?.uid, process.getuid!());
    assert.match(owner?.command ?? '', /node/);
    await assert.rejects(InstanceLock.acquire(d, me('b')), (err: unknown) => {
      assert.ok(err instanceof InstanceLockedError);
      assert.equal(err.holder?.pid, 1, 'what it said');
      assert.match(err.message, new RegExp(`in use by pid ${child.pid} \\(uid \\d+: .*node.*\\), which does not answer as a sockmesh agent of this instance: it holds the name of this instance's lock`));
      assert.doesNotMatch(err.message, /sockmesh status/, 'no pointer to its fake API socket');
      return true;
    });
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  }
  assert.equal(lockOwner(lockName(d)), undefined, 'nobody listens now');
});

test('a real holder in this process is told by its own words, confirmed by the kernel', async () => {
  const d = dir('real');
  const lock = await InstanceLock.acquire(d, me('a'));
  try {
    assert.deepEqual(lockOwner(lockName(d))?.nspids.includes(process.pid), true);
    await assert.rejects(InstanceLock.acquire(d, me('b')), /in use by agent pid \d+ \(instance a, 0\.0\.0-test/);
  } finally {
    await lock.release();
  }
});
