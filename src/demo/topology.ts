/**
 * The demo's little cluster on one machine: a "node" network namespace with
 * a bridge, one namespace per pod wired to it by a veth pair, and a cgroup per
 * pod below the mesh's cgroup root. Pod addresses come from 198.18.0.0/24 and
 * VIPs from 198.19.0.0/24 (the benchmarking range, RFC 2544); no namespace
 * has a route out, so nothing the demo sends can leave the machine, with or
 * without the mesh programs.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface PodSpec {
  name: string;
  ip: string;
}

export const DEMO_PREFIX = 'smdemo';
const NODE_NS = `${DEMO_PREFIX}-node`;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function inNs(ns: string, args: string[]): void {
  ip(['netns', 'exec', ns, ...args]);
}

export function podNs(pod: string): string {
  return `${DEMO_PREFIX}-${pod}`;
}

/** Creates namespaces, bridge, veths and cgroups. On failure, removes what it made. */
export function createTopology(pods: readonly PodSpec[], cgroupRoot: string): void {
  try {
    ip(['netns', 'add', NODE_NS]);
    inNs(NODE_NS, ['ip', 'link', 'set', 'lo', 'up']);
    inNs(NODE_NS, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    inNs(NODE_NS, ['ip', 'link', 'set', 'br0', 'up']);
    fs.mkdirSync(cgroupRoot, { recursive: true });
    pods.forEach((pod, i) => {
      const ns = podNs(pod.name);
      ip(['netns', 'add', ns]);
      inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
      // The veth is created in the node namespace, one end moved into the pod.
      inNs(NODE_NS, ['ip', 'link', 'add', `veth${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      inNs(NODE_NS, ['ip', 'link', 'set', `veth${i}`, 'master', 'br0', 'up']);
      inNs(ns, ['ip', 'addr', 'add', `${pod.ip}/24`, 'dev', 'eth0']);
      inNs(ns, ['ip', 'link', 'set', 'eth0', 'up']);
      fs.mkdirSync(path.join(cgroupRoot, pod.name), { recursive: true });
    });
  } catch (err) {
    removeTopology(pods.map((p) => p.name), cgroupRoot);
    throw new Error(`could not build the demo network: ${(err as Error).message}. ` +
      'Is iproute2 installed and are you root? `sockmesh demo --cleanup` removes leftovers.');
  }
}

/** Idempotent: removes every demo namespace and cgroup that exists. */
export function removeTopology(podNames: readonly string[], cgroupRoot: string): string[] {
  const removed: string[] = [];
  const existing = (() => {
    try {
      return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
    } catch {
      return [];
    }
  })();
  for (const ns of existing.filter((n) => n.startsWith(`${DEMO_PREFIX}-`))) {
    try {
      ip(['netns', 'del', ns]);
      removed.push(`netns ${ns}`);
    } catch { /* gone meanwhile */ }
  }
  for (const pod of podNames) {
    const dir = path.join(cgroupRoot, pod);
    if (removeCgroup(dir)) removed.push(`cgroup ${dir}`);
  }
  if (removeCgroup(cgroupRoot)) removed.push(`cgroup ${cgroupRoot}`);
  return removed;
}

function removeCgroup(dir: string): boolean {
  if (!fs.existsSync(dir)) return false;
  const parent = path.dirname(dir);
  try {
    for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      fs.writeFileSync(path.join(parent, 'cgroup.procs'), pid);
    }
  } catch { /* empty or gone */ }
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  return false;
}
