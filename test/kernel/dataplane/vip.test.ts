/**
 * Service traffic through VIPs on the real kernel: clients in the mesh cgroup
 * inside a loopback-only netns, backends answering with their own port.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { desiredState } from '../../../src/dataplane/desired';
import { applyDesired } from '../../../src/dataplane/writer';
import { MeshVerdict } from '../../../src/bpf/layouts/mesh';
import { runInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { meshEnv, servicePort, startBackends, MeshEnv } from '../../helpers/mesh';

interface ClientOut {
  byBackend: Record<string, number>;
  peers: string[];
  errors: Record<string, number>;
  connectUs: number[];
}

function client(env: MeshEnv, args: string[]): Promise<ClientOut> {
  return runInCgroup<ClientOut>(env.cg.path, 'vip-client', args, 60_000, env.ns.prefix()).then((r) => r.messages[0]!);
}

function verdicts(env: MeshEnv, svcId: number, verdict: number): number {
  return env.dp.verdicts().find((v) => v.svc === svcId && v.verdict === verdict)?.count ?? 0;
}

/** Pearson chi-square of observed counts against expected shares. */
function chiSquare(observed: number[], shares: number[]): number {
  const total = observed.reduce((a, b) => a + b, 0);
  return observed.reduce((acc, o, i) => {
    const e = total * shares[i]!;
    return acc + ((o - e) ** 2) / e;
  }, 0);
}

test('TCP through an IPv4 VIP: weighted spread passes chi-square over 2000 connects; getpeername is the VIP', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'tcp4');
    const ports = await startBackends(cleanup, env, '127.0.0.1', 3);
    const [svc] = desiredState([servicePort('reviews', ['127.77.0.10'], 8080, 'TCP',
      ports.map((p, i) => ({ host: '127.0.0.1', port: p, weight: i === 2 ? 2 : 1 })))]);
    const rep = applyDesired(env.dp.maps, [svc!]);
    assert.equal(rep.added, 1);

    const out = await client(env, ['tcp', '127.77.0.10', '8080', '2000', '8']);
    assert.deepEqual(out.errors, {});
    const observed = ports.map((p) => out.byBackend[String(p)] ?? 0);
    assert.equal(observed.reduce((a, b) => a + b, 0), 2000);
    const x2 = chiSquare(observed, [0.25, 0.25, 0.5]);
    // 2 degrees of freedom: P(X2 > 13.82) = 0.001 for a fair spread.
    assert.ok(x2 < 13.82, `chi-square ${x2.toFixed(2)} for ${observed.join('/')}`);
    assert.deepEqual(out.peers, ['127.77.0.10:8080'], 'getpeername returns the VIP, not the backend');
    assert.equal(verdicts(env, svc!.id, MeshVerdict.REWRITTEN), 2000);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('TCP and UDP through an IPv6 VIP; UDP replies come from the VIP', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'v6');
    const ports = await startBackends(cleanup, env, 'fd77::1', 2);
    const backends = ports.map((p) => ({ host: 'fd77::1', port: p }));
    const svcs = desiredState([
      servicePort('ratings', ['fd77::10'], 9090, 'TCP', backends),
      servicePort('ratings-udp', ['fd77::10'], 9090, 'UDP', backends),
    ]);
    applyDesired(env.dp.maps, svcs);

    const tcp = await client(env, ['tcp', 'fd77::10', '9090', '200', '4']);
    assert.deepEqual(tcp.errors, {});
    assert.deepEqual(Object.keys(tcp.byBackend).sort(), ports.map(String).sort(), 'both backends used');
    assert.deepEqual(tcp.peers, ['fd77::10:9090']);

    const udp = await client(env, ['udp', 'fd77::10', '9090', '100']);
    assert.deepEqual(udp.errors, {});
    assert.equal(Object.values(udp.byBackend).reduce((a, b) => a + b, 0), 100);
    assert.deepEqual(udp.peers, ['fd77::10:9090'], 'recvmsg6 shows the VIP as the source');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('UDP through an IPv4 VIP, unconnected and connected', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'udp4');
    const ports = await startBackends(cleanup, env, '127.0.0.1', 2);
    applyDesired(env.dp.maps, desiredState([servicePort('dns', ['127.77.0.53'], 53, 'UDP', ports.map((p) => ({ host: '127.0.0.1', port: p })))]));
    const un = await client(env, ['udp', '127.77.0.53', '53', '200']);
    assert.deepEqual(un.errors, {});
    assert.deepEqual(un.peers, ['127.77.0.53:53']);
    assert.equal(Object.keys(un.byBackend).length, 2, 'unconnected sends spread over both backends');
    const co = await client(env, ['udp-connected', '127.77.0.53', '53', '50']);
    assert.deepEqual(co.errors, {});
    assert.deepEqual(co.peers.sort(), ['127.77.0.53:53', 'connected:127.77.0.53:53']);
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a service with no usable backend refuses connects at once with ECONNREFUSED, counted', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = meshEnv(cleanup, 'nobe');
    const ports = await startBackends(cleanup, env, '127.0.0.1', 1);
    const svcs = desiredState([
      servicePort('empty', ['127.77.0.20'], 80, 'TCP', []),
      servicePort('drained', ['127.77.0.21'], 80, 'TCP', [{ host: '127.0.0.1', port: ports[0]!, weight: 0 }]),
    ]);
    applyDesired(env.dp.maps, svcs);
    for (const [i, vip] of ['127.77.0.20', '127.77.0.21'].entries()) {
      const out = await client(env, ['tcp', vip, '80', '5']);
      assert.deepEqual(out.errors, { ECONNREFUSED: 5 }, vip);
      assert.equal(verdicts(env, svcs[i]!.id, MeshVerdict.NO_BACKEND), 5);
    }
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
