/**
 * `sockmesh connections --open`: the connections open now, from the agent's
 * latest report of each (interim records every report interval), with the
 * same filters as the recent ones - and a closed connection leaves the list.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { NamedRecord } from '../../../src/agent/view';
import { agentEnv } from '../../helpers/agent-env';
import { AgentProc, agentCli } from '../../helpers/agent-proc';
import { collect, spawnInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { waitFor } from '../../helpers/wait';

/** JSON keeps cookies (u64) as strings. */
type Listed = Omit<NamedRecord, 'cookie'> & { cookie: string };

test('connections --open lists what is open as of its latest report; the close takes it off', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'open', 18091);
    const agent = AgentProc.start(env.args); // reports every 1 s
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');
    const list = (...args: string[]): Listed[] =>
      (JSON.parse(agentCli(['connections', '--socket', env.apiSocket, '-o', 'json', ...args]) || '{"items":[]}') as { items: Listed[] }).items;

    const client = spawnInCgroup(env.cg.path, 'steps', ['18091', '127.77.0.50:80'], env.ns.prefix());
    cleanup.defer('client', () => void client.kill('SIGKILL'));
    const msgs: { localPort?: number; sent?: number }[] = [];
    const done = collect<{ localPort?: number; sent?: number }>(client, 30_000, (m) => msgs.push(m));
    await waitFor(() => msgs.some((m) => m.localPort), 'the client connected');
    const localPort = msgs.find((m) => m.localPort)!.localPort!;
    client.stdin!.write('send 2000\n');

    let open: Listed[] = [];
    await waitFor(() => (open = list('--open')).length === 2 && open.every((r) => r.bytesSent + r.bytesReceived === 2000),
      'both sides open, with their 2000 bytes', 10_000);
    const c = open.find((r) => r.side === 'client')!;
    assert.equal(c.kind, 'interim');
    assert.equal(c.local.port, localPort);
    assert.deepEqual(c.vip, { address: '127.77.0.50', port: 80 });
    assert.equal(c.labels.service, 'default/web:80');
    assert.equal(open.find((r) => r.side === 'server')!.remote.port, localPort);
    assert.equal(list('--open', '--service', 'web').length, 2, 'the server side attributed by its endpoint');
    assert.equal(list('--open', '--workload', 'nobody').length, 0);
    // A misspelt service is an error naming the known ones, not an empty list that reads as no traffic.
    for (const args of [['connections'], ['connections', '--open'], ['edges'], ['edges', '--side', 'all']]) {
      assert.throws(() => execFileSync(process.execPath, [require.resolve('../../../src/cli/main'), ...args, '--service', 'wbe', '--socket', env.apiSocket],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), (err: { status?: number; stderr?: string }) =>
        err.status === 1 && /service default\/wbe not found \(known: default\/web, default\/web2\)/.test(err.stderr ?? ''), args.join(' '));
    }
    assert.deepEqual(list().filter((r) => r.local.port === localPort), [], 'not among the recent closed ones');
    assert.throws(() => execFileSync(process.execPath, [require.resolve('../../../src/cli/main'), 'connections', '--open', '--follow', '--socket', env.apiSocket],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), (err: { stderr?: string }) => /--open and --follow/.test(err.stderr ?? ''));

    client.stdin!.write('close\n');
    await done;
    await waitFor(() => list('--open').length === 0, 'nothing open after the close', 10_000);
    assert.equal(list().filter((r) => r.kind === 'close' && (r.local.port === localPort || r.remote.port === localPort)).length, 2, 'both closes among the recent');
    await agent.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a dual-stack server ([::], as Go, Node and Java listen) is attributed to its service, over IPv4', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'dual', 18092);
    const agent = AgentProc.start(env.args);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');
    const list = (...args: string[]): Listed[] =>
      (JSON.parse(agentCli(['connections', '--socket', env.apiSocket, '-o', 'json', ...args]) || '{"items":[]}') as { items: Listed[] }).items;

    const t0 = Date.now();
    const client = spawnInCgroup(env.cg.path, 'steps', ['18092', '127.77.0.50:80'], [...env.ns.prefix(), 'env', 'STEPS_LISTEN=::']);
    cleanup.defer('client', () => void client.kill('SIGKILL'));
    const msgs: { localPort?: number }[] = [];
    const done = collect<{ localPort?: number }>(client, 30_000, (m) => msgs.push(m));
    await waitFor(() => msgs.some((m) => m.localPort), 'the client connected');
    const localPort = msgs.find((m) => m.localPort)!.localPort!;
    client.stdin!.write('send 100\nclose\n');
    await done;

    let server: Listed | undefined;
    await waitFor(() => (server = list('--service', 'web').find((r) => r.side === 'server' && r.remote.port === localPort)) !== undefined,
      'the server side\'s close record, under the service', 10_000);
    // The socket is AF_INET6; what it carried is IPv4 (::ffff:127.0.0.1), and reads as such.
    assert.deepEqual([server!.family, server!.local.address, server!.local.port], [4, '127.0.0.1', 18092]);
    assert.equal(server!.labels.service, 'default/web:80');
    assert.equal(server!.bytesReceived, 100);
    // When it closed, on the wall clock (the kernel's monotonic time, converted by the agent).
    const at = Date.parse(server!.time ?? '');
    assert.ok(at >= t0 - 50 && at <= Date.now(), `closed at ${server!.time}, between ${new Date(t0).toISOString()} and now`);
    await agent.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
