/**
 * The real agent (a child process) on a mesh of two VIP services whose
 * backends run in a netns of the test's, enrolled through a cgroup of the
 * test's; and reading its /metrics. Everything registers with the Cleanup,
 * the instance's uninstall included.
 */
import fs from 'node:fs';
import path from 'node:path';
import { lockPath } from '../../src/agent/instance-lock';
import { cgroup2Root, ScratchCgroup } from '../../src/platform/cgroup';
import { AgentProc, agentCli, writeMesh } from './agent-proc';
import { startFixture } from './child';
import { Cleanup } from './cleanup';
import { TestNetns } from './netns';

export interface AgentEnv {
  instance: string;
  bpffsDir: string;
  cg: ScratchCgroup;
  ns: TestNetns;
  meshFile: string;
  /** The agent's local API socket (also in args). */
  apiSocket: string;
  args: string[];
}

/** webPort: where the web VIP leads instead of the first backend (a test's own server). */
export async function agentEnv(cleanup: Cleanup, tag: string, webPort?: number): Promise<AgentEnv & { ports: number[] }> {
  const instance = `t${process.pid}${tag}`;
  const ns = cleanup.add('netns', TestNetns.create(tag), (n) => n.remove());
  const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-${tag}`), (c) => c.remove());
  const backends = await startFixture<{ ports: number[] }>(undefined, 'backend', ['127.0.0.1', '0,0'], ns.prefix());
  cleanup.defer('backends', backends.stop);
  const ports = backends.ready.ports;
  const meshFile = writeMesh(meshYaml(webPort ? [webPort, ports[1]!] : ports));
  cleanup.defer('mesh file', () => fs.rmSync(path.dirname(meshFile), { recursive: true, force: true }));
  const bpffsDir = `/sys/fs/bpf/sockmesh/${instance}`;
  const apiSocket = `/tmp/sockmesh-${instance}.sock`;
  const args = ['-c', meshFile, '--instance', instance, '--cgroup-root', path.relative(cgroup2Root()!, cg.path),
    '--metrics-address', '127.0.0.1:0', '--api-socket', apiSocket, '--report-interval', '1s'];
  // Run last (cleanups run in reverse): a SIGKILLed agent leaves its socket file behind (the next
  // agent replaces it, but there is none); the lock file stays by design (a successor locks the
  // same inode), and the uninstall below takes the lock too - but none of it outlives a test.
  cleanup.defer('api socket and lock file', () => [apiSocket, lockPath(bpffsDir)].forEach((f) => fs.rmSync(f, { force: true })));
  // Whatever happens, the instance is uninstalled (as an operator would).
  cleanup.defer('uninstall', () => agentCli(['agent', ...args, '--uninstall']));
  return { instance, bpffsDir, cg, ns, meshFile, apiSocket, args, ports };
}

function meshYaml(ports: number[]): string {
  return `apiVersion: sockmesh.io/v1alpha1
kind: Mesh
network:
  vipCIDRs: [127.77.0.0/16]
services:
  - name: web
    vips: [127.77.0.50]
    ports:
      - { port: 80, targetPort: ${ports[0]} }
    backends:
      - { address: 127.0.0.1 }
  - name: web2
    vips: [127.77.0.51]
    ports:
      - { port: 80, targetPort: ${ports[1]} }
    backends:
      - { address: 127.0.0.1, weight: 5 }
workloads: []
`;
}

/** Sum of a metric's samples whose line contains every `match`. */
export function metricSum(text: string, name: string, ...match: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !match.every((m) => line.includes(m))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function metricsOf(agent: AgentProc): Promise<string> {
  const address = (await agent.waitForLog('metrics listening')).address as string;
  const res = await fetch(`http://${address}/metrics`);
  return res.text();
}
