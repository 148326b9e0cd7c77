/**
 * One agent per instance: a second agent on the same pins (a DaemonSet
 * rollout with surge, an operator starting one by hand) must not apply its
 * mesh file, take records from the running agent's ring or swap its
 * programs; `--uninstall` must not pull the pins from under a running agent;
 * and a SIGKILLed agent's successor must not wait for anything.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AgentStatus } from '../../../src/agent/view';
import { checkInstances } from '../../../src/doctor/checks';
import { agentEnv } from '../../helpers/agent-env';
import { AgentProc, agentCli, writeMesh } from '../../helpers/agent-proc';
import { runInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { dumpPinned, pinnedIds } from '../../helpers/pinned';
import { waitFor } from '../../helpers/wait';

test('a second agent of a running instance changes nothing and says who runs it; --uninstall waits for a stop', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'lock');
    const first = AgentProc.start(env.args);
    cleanup.defer('first agent', () => first.kill('SIGKILL'));
    await first.waitForLog('agent running');
    const idsBefore = pinnedIds(env.bpffsDir);
    const services = dumpPinned(env.bpffsDir, 'services');
    assert.equal(services.length, 2);

    // Its own API socket, and a mesh file with no services: only the lock stands in its way.
    const emptyMesh = writeMesh('apiVersion: sockmesh.io/v1alpha1\nkind: Mesh\nservices: []\nworkloads: []\n');
    cleanup.defer('empty mesh', () => fs.rmSync(path.dirname(emptyMesh), { recursive: true, force: true }));
    const args2 = env.args.map((a) => (a === env.meshFile ? emptyMesh : a === env.apiSocket ? `${env.apiSocket}.2` : a));
    const second = AgentProc.start(args2);
    cleanup.defer('second agent', () => second.kill('SIGKILL'));
    cleanup.defer('second api socket', () => fs.rmSync(`${env.apiSocket}.2`, { force: true }));
    // Bounded: without the lock it would run on, and the cleanup must still get its turn.
    await waitFor(() => second.child.exitCode !== null, 'the second agent exits', 15_000);
    assert.notEqual(second.child.exitCode, 0, 'the second agent exits with an error');
    const waiting = second.logs.find((l) => l.msg === 'instance in use by another agent; waiting for it to exit');
    assert.ok(waiting, `it said whom it waited for: ${JSON.stringify(second.logs)}`);
    assert.equal((waiting.holder as { pid: number }).pid, first.child.pid);
    const err = second.logs.filter((l) => l.level === 'raw').map((l) => l.msg).join('\n');
    assert.match(err, new RegExp(`${env.bpffsDir} is in use by agent pid ${first.child.pid} \\(instance ${env.instance}`));
    assert.match(err, /did not exit within 3 s: stop that agent first/);
    assert.equal(second.logs.some((l) => l.msg === 'dataplane ready'), false, 'it never opened the dataplane');
    assert.deepEqual(pinnedIds(env.bpffsDir), idsBefore, 'same maps and links');
    assert.deepEqual(dumpPinned(env.bpffsDir, 'services'), services, 'the first agent\'s services, not the empty file\'s');

    // The first agent still reads every record of its ring.
    const status = (): AgentStatus => JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as AgentStatus;
    const records0 = status().ringbuf.records;
    const out = (await runInCgroup<{ errors: Record<string, number> }>(env.cg.path, 'vip-client', ['tcp', '127.77.0.50', '80', '20', '2'], 30_000, env.ns.prefix())).messages[0]!;
    assert.deepEqual(out.errors, {});
    await waitFor(() => status().ringbuf.records >= records0 + 20, 'the first agent reads the 20 close records', 10_000);

    assert.throws(() => agentCli(['agent', ...env.args, '--uninstall']), (e: unknown) =>
      e instanceof Error && 'stderr' in e && new RegExp(`in use by agent pid ${first.child.pid}`).test(String(e.stderr)));
    assert.deepEqual(pinnedIds(env.bpffsDir), idsBefore, '--uninstall removed nothing');

    // The kernel drops the lock with the process: the next agent adopts at once.
    await first.kill('SIGKILL');
    const t0 = Date.now();
    const third = AgentProc.start(env.args);
    cleanup.defer('third agent', () => third.kill('SIGKILL'));
    const ready = await third.waitForLog('dataplane ready');
    assert.equal(ready.outcome, 'adopted');
    assert.equal(third.logs.some((l) => l.msg.startsWith('instance in use')), false, `no wait (${Date.now() - t0} ms)`);
    await third.waitForLog('agent running');
    // doctor's view of the same: the instance has its agent; stopped, its programs stay pinned without one.
    const instances = path.dirname(env.bpffsDir);
    const row = (): { status: string; detail: string } => checkInstances(instances);
    assert.doesNotMatch(row().detail, new RegExp(`pinned with no agent: .*\\b${env.instance}\\b`));
    assert.match(row().detail, new RegExp(`agent running: .*\\b${env.instance}\\b`));
    await third.kill('SIGTERM');
    assert.ok(fs.existsSync(path.join(env.bpffsDir, 'links')), 'a stopped agent leaves its programs attached');
    assert.equal(row().status, 'warn');
    assert.match(row().detail, new RegExp(`pinned with no agent: .*\\b${env.instance}\\b`));
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
