/**
 * The agent's state is the kernel's: SIGKILL it under load, start it again,
 * and no connect through a VIP fails; the restarted agent adopts the same
 * maps and links instead of rebuilding them. An invalid mesh file is
 * rejected with its paths and leaves the kernel state exactly as it was.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BpfMap } from '../../../src/bpf';
import { AgentProc, agentCli } from '../../helpers/agent-proc';
import { agentEnv, metricsOf, metricSum } from '../../helpers/agent-env';
import { collect, runInCgroup, spawnInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { dumpPinned, pinnedIds } from '../../helpers/pinned';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { waitFor } from '../../helpers/wait';

test('SIGKILL and restart under load: zero failed connects, state adopted not rebuilt', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'kill');
    const first = AgentProc.start(env.args);
    cleanup.defer('first agent', () => first.kill('SIGKILL'));
    await first.waitForLog('agent running');
    const idsBefore = pinnedIds(env.bpffsDir);

    const client = spawnInCgroup(env.cg.path, 'vip-client', ['tcp-loop', '127.77.0.50', '80', '4000', '4'], env.ns.prefix());
    const done = collect<{ errors: Record<string, number>; log: [string, number][] }>(client, 60_000);
    await new Promise((r) => setTimeout(r, 700));
    await first.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000)); // traffic with no agent at all
    const second = AgentProc.start(env.args);
    cleanup.defer('second agent', () => second.kill('SIGKILL'));
    const ready = await second.waitForLog('dataplane ready');
    assert.equal(ready.outcome, 'adopted');
    await second.waitForLog('agent running');
    const out = (await done).messages[0]!;
    assert.deepEqual(out.errors, {}, 'no connect failed while the agent was killed and restarted');
    assert.ok(out.log.length > 200, `connections kept flowing (${out.log.length})`);
    assert.deepEqual(pinnedIds(env.bpffsDir), idsBefore, 'same maps and links: adopted, not rebuilt');
    const applied = second.logs.find((l) => l.msg === 'configuration applied')!;
    assert.equal(applied.unchanged, 2, 'the restarted agent found the kernel already right');
    await second.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a restart with another ring size replaces the ring under load: no connect fails, the old ring is read', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'ring');
    const first = AgentProc.start([...env.args, '--ring-bytes', '1MiB']);
    cleanup.defer('first agent', () => first.kill('SIGKILL'));
    await first.waitForLog('agent running');
    const client = spawnInCgroup(env.cg.path, 'vip-client', ['tcp-loop', '127.77.0.50', '80', '4000', '4'], env.ns.prefix());
    const done = collect<{ errors: Record<string, number>; log: [string, number][] }>(client, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    await first.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 700)); // records pile up in the 1 MiB ring, nobody reading
    const second = AgentProc.start([...env.args, '--ring-bytes', '2MiB']);
    cleanup.defer('second agent', () => second.kill('SIGKILL'));
    assert.equal((await second.waitForLog('dataplane ready')).outcome, 'adopted');
    const replaced = await second.waitForLog('map replaced');
    assert.deepEqual([replaced.map, replaced.action], ['events', 'drain']);
    const read = await second.waitForLog('replaced ring buffer read and closed');
    assert.ok((read.records as number) > 100, `what the old programs wrote was read (${String(read.records)} records)`);
    const out = (await done).messages[0]!;
    assert.deepEqual(out.errors, {}, 'no connect failed');
    const events = BpfMap.fromPin(path.join(env.bpffsDir, 'maps', 'events'));
    assert.equal(events.info.maxEntries, 2 << 20, 'the pin names the new ring');
    events.close();
    await second.waitForLog('agent running');
    const status = JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as { dataplaneChanges: string[] };
    assert.deepEqual(status.dataplaneChanges, ['map events: drain (definition changed: maxEntries 1048576 -> 2097152)'], 'status says what the start changed');
    await second.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('counters stay exact across a SIGKILL and restart: a connection\'s bytes are counted once', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'count', 18090);
    const first = AgentProc.start(env.args);
    cleanup.defer('first agent', () => first.kill('SIGKILL'));
    await first.waitForLog('agent running');
    const client = spawnInCgroup(env.cg.path, 'steps', ['18090', '127.77.0.50:80'], env.ns.prefix());
    cleanup.defer('client', () => void client.kill('SIGKILL'));
    const msgs: { localPort?: number; sent?: number; done?: boolean }[] = [];
    const done = collect<{ localPort?: number; sent?: number; done?: boolean }>(client, 30_000, (m) => msgs.push(m));
    await waitFor(() => msgs.some((m) => m.localPort), 'the client connected');
    const CLIENT = 'side="client"';
    client.stdin!.write('send 5000\n');
    // The first agent counts the connection opened and its 5000 bytes (an interim report).
    let text = '';
    await waitFor(async () => {
      text = await metricsOf(first);
      return metricSum(text, 'sockmesh_sent_bytes_total', CLIENT) === 5000;
    }, 'the first agent counted 5000 bytes sent', 10_000);
    assert.equal(metricSum(text, 'sockmesh_connections_opened_total', CLIENT), 1);
    await first.kill('SIGKILL');

    client.stdin!.write('send 7000\n');
    await waitFor(() => msgs.some((m) => m.sent === 12_000), 'the next 7000 bytes written');
    const second = AgentProc.start(env.args);
    cleanup.defer('second agent', () => second.kill('SIGKILL'));
    await second.waitForLog('agent running');
    const status = JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as { openConnections: number };
    assert.equal(status.openConnections, 2, 'both sides of the connection, counted by the kernel at start');
    client.stdin!.write('close\n');
    await done;
    await waitFor(async () => {
      text = await metricsOf(second);
      return metricSum(text, 'sockmesh_connections_closed_total', CLIENT) === 1;
    }, 'the second agent saw the close', 10_000);
    // What the second process exports adds to what the first one did:
    // Prometheus sums across the counter reset, so each byte must be in one of them.
    assert.equal(metricSum(text, 'sockmesh_sent_bytes_total', CLIENT), 7000, 'only the bytes the first agent did not count');
    assert.equal(metricSum(text, 'sockmesh_connections_opened_total', CLIENT), 0, 'opened once, in the first agent');
    await second.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('an invalid mesh file on reload is rejected with its paths; the kernel state is unchanged', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'bad');
    const agent = AgentProc.start(env.args);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');
    const services = dumpPinned(env.bpffsDir, 'services');
    const slots = dumpPinned(env.bpffsDir, 'slots');
    assert.equal(services.length, 2);

    fs.writeFileSync(env.meshFile, `apiVersion: sockmesh.io/v1alpha1
kind: Mesh
network:
  vipCIDRs: [127.77.0.0/33]
services:
  - name: web
    vips: [127.77.0.50]
    ports:
      - { port: "80", targetPort: 70000 }
    backends:
      - { address: 127.0.0.1, weight: 5000 }
  - name: web3
    vips: [127.77.0.50]
    color: blue
    ports:
      - { port: 81 }
    backends: []
workloads: []
`);
    process.kill(agent.child.pid!, 'SIGHUP');
    const rejected = await agent.waitForLog('configuration rejected; running state kept');
    const errors = (rejected.errors as string[]).join('\n');
    for (const want of ['network.vipCIDRs[0]', 'services[0].ports[0].port', 'services[0].ports[0].targetPort',
      'services[0].backends[0].weight', 'services[1].color', 'services[1].vips[0]']) {
      assert.ok(errors.includes(want), `rejection names ${want}:\n${errors}`);
    }
    assert.match(errors, /mesh\.yaml:\d+:\d+ /, 'errors carry file:line:column');
    assert.deepEqual(dumpPinned(env.bpffsDir, 'services'), services, 'services map unchanged');
    assert.deepEqual(dumpPinned(env.bpffsDir, 'slots'), slots, 'slots map unchanged');
    await agent.kill('SIGTERM');

    // Restarted with the bad file still there: the pinned state keeps serving and status says why.
    const again = AgentProc.start(env.args);
    cleanup.defer('restarted agent', () => again.kill('SIGKILL'));
    await again.waitForLog('agent running');
    assert.ok(again.logs.some((l) => l.msg === 'configuration rejected; running state kept'));
    const status = JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as { config: { rejected?: { errors: string[] } } };
    assert.match(status.config.rejected?.errors.join('\n') ?? '', /services\[0\]\.ports\[0\]\.targetPort/);
    assert.deepEqual(dumpPinned(env.bpffsDir, 'services'), services, 'services map unchanged after the restart');
    await again.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a fresh agent that cannot start its endpoints rolls its install back', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'roll');
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanup.defer('blocker', () => blocker.close());
    const port = (blocker.address() as net.AddressInfo).port;
    const args = env.args.map((a) => (a === '127.0.0.1:0' ? `127.0.0.1:${port}` : a));
    const agent = AgentProc.start(args);
    const code = await new Promise<number | null>((r) => agent.child.on('exit', (c) => r(c)));
    assert.notEqual(code, 0);
    assert.equal(fs.existsSync(env.bpffsDir), false, 'no pins left by the failed start');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

/** Valid, but 65 ports of 4096 slots each (five weights near 1000 scale to the maximum) overflow the slot table. */
const OVERSIZED_MESH = `apiVersion: sockmesh.io/v1alpha1
kind: Mesh
network:
  vipCIDRs: [127.77.0.0/16]
services:
  - name: huge
    vips: [127.77.0.90]
    ports:
${Array.from({ length: 65 }, (_, i) => `      - { name: p${i}, port: ${1000 + i} }`).join('\n')}
    backends:
${[1000, 999, 998, 997, 996].map((w, i) => `      - { address: 127.0.0.${i + 1}, weight: ${w} }`).join('\n')}
workloads: []
`;

test('a mesh too big for the kernel tables: a fresh agent leaves nothing, a restarted one keeps serving the old state', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'cap');
    const good = fs.readFileSync(env.meshFile, 'utf8');
    fs.writeFileSync(env.meshFile, OVERSIZED_MESH);
    const fresh = AgentProc.start(env.args);
    cleanup.defer('fresh agent', () => fresh.kill('SIGKILL'));
    await waitFor(() => fresh.child.exitCode !== null, 'the fresh agent exits', 20_000);
    assert.notEqual(fresh.child.exitCode, 0);
    assert.match(fresh.logs.map((l) => l.msg).join('\n'), /does not fit the kernel tables: \d+ backend slots/);
    assert.equal(fs.existsSync(env.bpffsDir), false, 'the fresh install was rolled back');

    fs.writeFileSync(env.meshFile, good);
    const first = AgentProc.start(env.args);
    cleanup.defer('first agent', () => first.kill('SIGKILL'));
    await first.waitForLog('agent running');
    await first.kill('SIGTERM');
    const services = dumpPinned(env.bpffsDir, 'services');
    fs.writeFileSync(env.meshFile, OVERSIZED_MESH);
    const second = AgentProc.start(env.args);
    cleanup.defer('second agent', () => second.kill('SIGKILL'));
    await second.waitForLog('agent running');
    assert.ok(second.logs.some((l) => l.msg === 'configuration not applied; running state kept'));
    const status = JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as { config: { rejected?: { errors: string[] } } };
    assert.match(status.config.rejected?.errors.join('\n') ?? '', /does not fit the kernel tables/);
    assert.deepEqual(dumpPinned(env.bpffsDir, 'services'), services, 'the previous services, untouched');
    const out = (await runInCgroup<{ errors: Record<string, number> }>(env.cg.path, 'vip-client', ['tcp', '127.77.0.50', '80', '5', '1'], 30_000, env.ns.prefix())).messages[0]!;
    assert.deepEqual(out.errors, {}, 'the previous VIPs still serve');
    await second.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a changed mesh file is applied without a signal: the watched file reloads', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'watch');
    const agent = AgentProc.start(env.args);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');
    const slotsBefore = dumpPinned(env.bpffsDir, 'slots').length;
    // An editor-style replace: write a new file and rename it over the old one.
    // It also declares a workload in a cgroup outside the agent's root: applied, with a warning.
    const next = fs.readFileSync(env.meshFile, 'utf8')
      .replace('- { address: 127.0.0.1, weight: 5 }', '- { address: 127.0.0.1, weight: 5 }\n      - { address: 127.0.0.2, weight: 5 }')
      .replace('workloads: []', 'workloads:\n  - { name: stray, cgroup: sockmesh-test-elsewhere/stray }\nagent:\n  edgeTtl: 5m');
    fs.writeFileSync(`${env.meshFile}.tmp`, next);
    fs.renameSync(`${env.meshFile}.tmp`, env.meshFile);
    await waitFor(() => agent.logs.filter((l) => l.msg === 'configuration applied').length >= 2, 'a second apply', 10_000);
    const applied = agent.logs.filter((l) => l.msg === 'configuration applied')[1]!;
    assert.equal(applied.flipped, 1, 'web2 flipped to its new backend set');
    assert.equal(applied.unchanged, 1);
    assert.equal(dumpPinned(env.bpffsDir, 'slots').length, slotsBefore + 1, 'one backend more, one slot more');
    // Logged right after the apply line, but the child's output may arrive in two reads.
    await waitFor(() => agent.logs.some((l) => /outside the agent's cgroup root/.test(String(l.msg))), 'the stray workload logged', 5_000);
    const status = JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as { config: { warnings: string[] } };
    // One warning: outside the root it is not enrolled whether it exists or not.
    assert.deepEqual(status.config.warnings.filter((w) => w.includes('sockmesh-test-elsewhere/stray')).map((w) => w.replace(/cgroup \S+ is/, 'cgroup X is').replace(/root \S+:/, 'root R:')), [
      'workload cgroup X is outside the cgroup root R: not enrolled (no VIPs, no telemetry)',
    ]);
    // The mesh applies; the agent's own settings wait for a restart, and it says so.
    assert.deepEqual(status.config.warnings.filter((w) => w.startsWith('agent settings')), [
      'agent settings changed in the mesh file (agent.edgeTtl): the agent runs on with the ones it started with; ' +
      'restart it to apply them (a flag or SOCKMESH_* variable still wins over the file)',
    ]);
    await agent.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
