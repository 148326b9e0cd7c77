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
import { agentEnv, metricsOf, metricSum } from '../../helpers/agent-env';
import { AgentProc, agentCli } from '../../helpers/agent-proc';
import { runInCgroup } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';

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
