/**
 * What the agent's /metrics says about the kernel side itself: with bpfStats
 * on, each mesh program's runs and run time as the kernel counts them - and
 * the machine-wide accounting ends with the agent, instead of taxing every
 * BPF program of the node after it is gone.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AgentStatus } from '../../../src/agent/view';
import { Link, Program } from '../../../src/bpf';
import { cgroup2Root, ScratchCgroup } from '../../../src/platform/cgroup';
import { AgentEnv, agentEnv, metricsOf, metricSum } from '../../helpers/agent-env';
import { AgentProc, agentCli } from '../../helpers/agent-proc';
import { runInCgroup, spawnInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { waitFor } from '../../helpers/wait';

interface ClientOut {
  byBackend: Record<string, number>;
  errors: Record<string, number>;
}

/** Runs of the program behind a pinned hook, as the kernel counts them. */
function pinnedRuns(bpffsDir: string, hook: string): number {
  const link = Link.fromPin(path.join(bpffsDir, 'links', hook));
  const prog = Program.fromId(link.info().progId!);
  try {
    return prog.info().runCount;
  } finally {
    prog.close();
    link.close();
  }
}

/** The env's mesh file, with these workloads: each a cgroup directly below the env's (made or not). */
function setWorkloads(env: AgentEnv, names: readonly string[]): void {
  const rel = path.relative(cgroup2Root()!, env.cg.path);
  fs.writeFileSync(env.meshFile, fs.readFileSync(env.meshFile, 'utf8')
    .replace('workloads: []', `workloads:\n${names.map((n) => `  - { name: ${n}, cgroup: ${rel}/${n} }`).join('\n')}`));
}

/** Client-side connections opened through web2's VIP, by workload, once `atLeast` in all reached /metrics. */
async function openedByWorkload(agent: AgentProc, atLeast: number): Promise<{ of: (workload: string) => number; lines: string }> {
  let text = '';
  const total = (): number => metricSum(text, 'sockmesh_connections_opened_total', 'side="client"');
  await waitFor(async () => ((text = await metricsOf(agent)), total() >= atLeast), `${atLeast} connections in /metrics`, 5000);
  return {
    of: (workload) => metricSum(text, 'sockmesh_connections_opened_total', 'side="client"', `workload="${workload}"`, 'service="default/web2:80"'),
    lines: text.split('\n').filter((l) => l.startsWith('sockmesh_connections_opened_total')).join('\n'),
  };
}

test('bpfStats on: /metrics has each hook\'s runs and run time, and the counting stops with the agent', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'stats');
    const agent = AgentProc.start([...env.args, '--bpf-stats', 'on']);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');

    const client = async (): Promise<ClientOut> =>
      (await runInCgroup<ClientOut>(env.cg.path, 'vip-client', ['tcp', '127.77.0.50', '80', '50', '2'], 30_000, env.ns.prefix())).messages[0]!;
    const out = await client();
    assert.deepEqual(out.errors, {});
    const text = await metricsOf(agent);
    const runs = (hook: string): number => metricSum(text, 'sockmesh_bpf_program_runs_total', `hook="${hook}"`);
    const seconds = (hook: string): number => metricSum(text, 'sockmesh_bpf_program_run_seconds_total', `hook="${hook}"`);
    assert.equal(runs('connect4'), 50, 'one connect4 run per connect of the cgroup');
    // The backends are outside the cgroup: client sides only, a dozen callbacks each.
    assert.ok(runs('sockops') >= 50 * 5, `sockops runs ${runs('sockops')}`);
    assert.ok(runs('report') >= 1, 'the report run at start');
    assert.ok(seconds('connect4') > 0 && seconds('sockops') > 0, 'run time measured');
    assert.ok(seconds('connect4') / runs('connect4') < 1e-3, `a connect4 run takes microseconds, not ${seconds('connect4') / runs('connect4')} s`);
    assert.match(text, /^sockmesh_bpf_program_runs_total\{hook="sendmsg4"\} 0$/m, 'every hook, the idle ones at 0: no UDP here');
    // The same counts through the local API, for `sockmesh status`.
    const status = (): AgentStatus => JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as AgentStatus;
    const st = status();
    assert.ok(st.bpfStats && Date.parse(st.bpfStats.since) > 0);
    assert.equal(st.bpfStats.programs.find((p) => p.hook === 'connect4')?.runs, 50);

    await agent.kill('SIGTERM');
    // The agent held the stats by an fd: gone with it, unless the node turned them on itself.
    if (fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim() === '0') {
      const stopped = pinnedRuns(env.bpffsDir, 'connect4');
      assert.deepEqual((await client()).errors, {}, 'traffic flows with the agent stopped');
      assert.equal(pinnedRuns(env.bpffsDir, 'connect4'), stopped, 'no run counted after the agent stopped');
    } else {
      t.diagnostic('kernel.bpf_stats_enabled is 1 on this machine: the end of the agent\'s accounting cannot be observed');
    }

    const plain = AgentProc.start(env.args);
    cleanup.defer('agent without stats', () => plain.kill('SIGKILL'));
    await plain.waitForLog('agent running');
    assert.doesNotMatch(await metricsOf(plain), /^sockmesh_bpf_program_\w+\{/m, 'bpfStats off: no such series');
    assert.equal(status().bpfStats, undefined, 'nor any in status');
    await plain.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('edgeTtl: an edge without records leaves /metrics; one with an idle open connection stays', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  const SERVER_PORT = 18097; // in the test's own netns
  try {
    const env = await agentEnv(cleanup, 'ttl', SERVER_PORT);
    const agent = AgentProc.start([...env.args, '--edge-ttl', '3s']);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');

    // web: one connection, 1000 bytes, then no packet at all for 20 s; web2: five that close at once.
    const idle = spawnInCgroup(env.cg.path, 'idle', [String(SERVER_PORT), '127.77.0.50:80', '20000'], env.ns.prefix());
    cleanup.defer('idle connection', () => idle.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      idle.stdout!.on('data', (b: Buffer) => b.toString().includes('localPort') && resolve());
      idle.once('exit', (code) => reject(new Error(`idle fixture exited (${code})`)));
    });
    const out = (await runInCgroup<ClientOut>(env.cg.path, 'vip-client', ['tcp', '127.77.0.51', '80', '5', '1'], 30_000, env.ns.prefix())).messages[0]!;
    assert.deepEqual(out.errors, {});
    const opened = (text: string, service: string): number => metricSum(text, 'sockmesh_connections_opened_total', `service="default/${service}:80"`);
    await waitFor(async () => opened(await metricsOf(agent), 'web2') === 5, 'the five web2 connections in /metrics', 5000);
    const t0 = Date.now();
    let text = '';
    // Edge series carry a side; the per-service verdict counter stays (the service still exists).
    const edgeLines = (service: string): string[] => text.split('\n').filter((l) => l.includes('side="') && l.includes(`service="default/${service}:80"`));
    await waitFor(async () => ((text = await metricsOf(agent)), edgeLines('web2').length === 0), 'the web2 edge expires', 10_000);
    assert.ok(Date.now() - t0 >= 1500, 'not before its TTL');
    assert.equal(opened(text, 'web'), 2, 'the idle connection\'s client and server edges stay, counted once each');
    assert.equal(metricSum(text, 'sockmesh_sent_bytes_total', 'side="client"', 'service="default/web:80"'), 1000);
    assert.match(text, /^sockmesh_edges_expired_total 1$/m);
    assert.match(text, /^sockmesh_edges 2$/m);
    const st = JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as AgentStatus;
    // The mesh file names no workload: all 7 connections opened (the idle one's two sides, web2's five clients) are unknown's.
    assert.deepEqual(st.edges, { live: 2, expired: 1, ttlMs: 3000, unattributed: 7 }, 'status says the same');
    await agent.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a container whose cgroup is removed before the agent reads its records is still its workload\'s', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'gone');
    setWorkloads(env, ['pod', 'late']);
    const pod = cleanup.add('pod cgroup', ScratchCgroup.create('pod', env.cg.path), (c) => c.remove());
    const agent = AgentProc.start(env.args);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');

    // Like a Job's container: made, connects, exits, and its cgroup is removed at once - the agent
    // reads records every 100 ms, so they arrive when no walk can find the cgroup any more.
    const shortLived = async (parent: string, name: string): Promise<void> => {
      await new Promise((r) => setTimeout(r, 50)); // a container's runtime takes longer than this to start it
      const ctr = ScratchCgroup.create(name, parent);
      try {
        const out = (await runInCgroup<ClientOut>(ctr.path, 'vip-client', ['tcp', '127.77.0.51', '80', '3', '1'], 30_000, env.ns.prefix())).messages[0]!;
        assert.deepEqual(out.errors, {});
      } finally {
        ctr.remove();
      }
    };
    for (let i = 0; i < 3; i++) await shortLived(pod.path, `job-${i}`);
    // A workload whose cgroup was made after the apply, and is gone with its container by the time of the records.
    const late = ScratchCgroup.create('late', env.cg.path);
    try {
      await shortLived(late.path, 'ctr');
    } finally {
      late.remove();
    }

    const opened = await openedByWorkload(agent, 12);
    assert.equal(opened.of('default/pod'), 9, opened.lines);
    assert.equal(opened.of('default/late'), 3, opened.lines);
    assert.equal(opened.of('unknown'), 0, opened.lines);
    await agent.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a container made, used and removed while the agent could not look is its pod\'s, by the cgroup above its own', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'stopped');
    setWorkloads(env, ['pod']);
    const pod = cleanup.add('pod cgroup', ScratchCgroup.create('pod', env.cg.path), (c) => c.remove());
    const agent = AgentProc.start(env.args);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');

    // Following cgroups as they are made needs the agent's thread: stopped
    // (as a busy one is, for less long), it learns of the container only
    // once its cgroup is gone, and no id can be read from a removed cgroup.
    // The records say which cgroups were above the socket's: the pod's.
    agent.freeze(true);
    cleanup.defer('agent continued', () => agent.freeze(false));
    const ctr = ScratchCgroup.create('job', pod.path);
    try {
      const out = (await runInCgroup<ClientOut>(ctr.path, 'vip-client', ['tcp', '127.77.0.51', '80', '3', '1'], 30_000, env.ns.prefix())).messages[0]!;
      assert.deepEqual(out.errors, {});
    } finally {
      ctr.remove();
    }
    agent.freeze(false);

    const opened = await openedByWorkload(agent, 3);
    assert.equal(opened.of('default/pod'), 3, opened.lines);
    assert.equal(opened.of('unknown'), 0, opened.lines);
    const status = JSON.parse(agentCli(['status', '--socket', env.apiSocket, '-o', 'json'])) as AgentStatus;
    assert.equal(status.edges?.unattributed, 0, 'status: every connection under its workload');
    await agent.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});

test('a workload is its cgroup and everything below it, also when the cgroup appears after the mesh file was applied', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const env = await agentEnv(cleanup, 'nest');
    setWorkloads(env, ['early', 'late']);
    // A pod and its container: the process (and its sockets) one level below the workload's cgroup.
    const early = cleanup.add('early cgroup', ScratchCgroup.create('early', env.cg.path), (c) => c.remove());
    const earlyCtr = cleanup.add('early container cgroup', ScratchCgroup.create('ctr', early.path), (c) => c.remove());
    const agent = AgentProc.start(env.args);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');

    const connects = async (cg: string): Promise<void> => {
      const out = (await runInCgroup<ClientOut>(cg, 'vip-client', ['tcp', '127.77.0.51', '80', '3', '1'], 30_000, env.ns.prefix())).messages[0]!;
      assert.deepEqual(out.errors, {});
    };
    await connects(earlyCtr.path);
    // Scheduled after the apply: its cgroups did not exist when the mesh file was read.
    const late = cleanup.add('late cgroup', ScratchCgroup.create('late', env.cg.path), (c) => c.remove());
    const lateWorker = cleanup.add('late worker cgroup', ScratchCgroup.create('worker', late.path), (c) => c.remove());
    await connects(lateWorker.path);

    const opened = await openedByWorkload(agent, 6);
    assert.equal(opened.of('default/early'), 3, 'the container\'s sockets are the pod\'s');
    assert.equal(opened.of('default/late'), 3, 'a workload cgroup made after the apply');
    assert.equal(opened.of('unknown'), 0, opened.lines);
    await agent.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
