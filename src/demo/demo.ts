/**
 * `sockmesh demo`: a local mesh on one machine, no cluster. Five pods in their
 * own network namespaces and cgroups (loadgen -> frontend -> reviews v1/v2 ->
 * ratings), the agent attached to their cgroup root, traffic through the VIPs,
 * a live view of the edges, /metrics and the local API to look at. Stopping
 * (Ctrl-C or --duration) removes everything it made.
 */
import { spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Agent } from '../agent/agent';
import { InstanceLock, lockPath } from '../agent/instance-lock';
import { startAddons } from '../agent/addons';
import { createLogger, Logger } from '../agent/log';
import { mergeSettings } from '../config/settings';
import { SettingsError } from '../config/errors';
import type { AgentSettings } from '../config/model';
import { repoRoot } from '../bpf/native';
import { renderEdges } from '../cli/render/edges';
import { cgroup2Root } from '../platform/cgroup';
import { ensureBpffs } from '../platform/bpffs';
import type { Edge } from '../telemetry/aggregator';
import { createTopology, podNs, removeTopology, PodSpec } from './topology';
import { VERSION } from '../version';

export const DEMO_CGROUP = 'sockmesh-demo';
export const DEMO_DIR = '/run/sockmesh/demo';
const DEMO_API_SOCKET = '/run/sockmesh/demo.sock';

/** true if something accepts connections on the unix socket at path. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface DemoPod extends PodSpec {
  /** workload.js arguments */
  argv: string[];
}

const VIP = { frontend: '198.19.0.5', reviews: '198.19.0.10', ratings: '198.19.0.20' };

export const DEMO_PODS: readonly DemoPod[] = [
  { name: 'ratings', ip: '198.18.0.31', argv: ['server', '198.18.0.31', '9080', 'ratings'] },
  { name: 'reviews-v1', ip: '198.18.0.21', argv: ['server', '198.18.0.21', '9080', 'reviews-v1'] },
  { name: 'reviews-v2', ip: '198.18.0.22', argv: ['server', '198.18.0.22', '9080', 'reviews-v2', `http://${VIP.ratings}:9080/`] },
  { name: 'frontend', ip: '198.18.0.11', argv: ['server', '198.18.0.11', '8080', 'frontend', `http://${VIP.reviews}:9080/`] },
  { name: 'loadgen', ip: '198.18.0.2', argv: ['loadgen', `http://${VIP.frontend}/`, '50'] },
];

export function demoMeshYaml(metricsAddress: string): string {
  const wl = DEMO_PODS.map((p) => `  - name: ${p.name}\n    labels: { app: ${p.name.replace(/-v\d$/, '')} }\n    cgroup: ${DEMO_CGROUP}/${p.name}`).join('\n');
  return `# The sockmesh demo mesh. Edit it while the demo runs (weights, backends):
# the agent reloads it and the live view follows.
apiVersion: sockmesh.io/v1alpha1
kind: Mesh
network:
  vipCIDRs: [198.19.0.0/24]
services:
  - name: frontend
    vips: [${VIP.frontend}]
    ports: [{ name: http, port: 80, targetPort: 8080 }]
    backends:
      - { address: 198.18.0.11, labels: { app: frontend } }
  - name: reviews
    vips: [${VIP.reviews}]
    # A named target port, as in Kubernetes: each backend says which number it is.
    ports: [{ name: http, port: 9080, targetPort: http }]
    backends:
      - { address: 198.18.0.21, weight: 1, labels: { app: reviews, version: v1 }, ports: { http: 9080 } }
      - { address: 198.18.0.22, weight: 1, labels: { app: reviews, version: v2 }, ports: { http: 9080 } }
  - name: ratings
    vips: [${VIP.ratings}]
    ports: [{ name: http, port: 9080 }]
    backends:
      - { address: 198.18.0.31, labels: { app: ratings } }
workloads:
${wl}
agent:
  instance: demo
  cgroupRoot: ${DEMO_CGROUP}
  metricsAddress: ${metricsAddress}
  apiSocket: ${DEMO_API_SOCKET}
  reportInterval: 2s
`;
}

export interface DemoOptions {
  /** Stop by itself after this many seconds; 0: until Ctrl-C. */
  durationS: number;
  metricsAddress: string;
  /** 'table': live view on stdout; 'json': one summary object at the end. */
  output: 'table' | 'json';
  logLevel: AgentSettings['logLevel'];
}

export interface DemoSummary {
  edges: Array<Edge['labels'] & { opened: number; failed: number; bytesSent: number; bytesReceived: number }>;
  records: number;
  removed: string[];
}

function spawnPod(pod: DemoPod, cgroupDir: string): ChildProcess {
  const script = path.join(repoRoot, 'dist', 'src', 'demo', 'workload.js');
  // Join the cgroup first: `ip netns exec` remounts /sys, hiding the cgroup tree.
  const sh = `echo $$ > "${cgroupDir}/cgroup.procs" && exec ip netns exec "$0" "$@"`;
  return spawn('sh', ['-c', sh, podNs(pod.name), process.execPath, script, ...pod.argv], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The demo agent's pins (instance "demo"): also what its instance lock is named after. */
const DEMO_BPFFS_DIR = '/sys/fs/bpf/sockmesh/demo';

/**
 * `demo --cleanup`: what a crashed demo left, removed - never a running
 * demo's pods and pins (its agent holds the demo instance's lock).
 */
export async function cleanupCrashedDemo(): Promise<string[]> {
  const lock = await InstanceLock.acquire(DEMO_BPFFS_DIR, {
    pid: process.pid, instance: 'demo', version: VERSION, startedAt: new Date().toISOString(), apiSocket: DEMO_API_SOCKET,
  });
  try {
    return cleanupDemo();
  } finally {
    await lock.release();
  }
}

/** Removes whatever a crashed demo left. */
export function cleanupDemo(log?: Logger): string[] {
  const root = cgroup2Root();
  const removed: string[] = [];
  const bpffsDir = DEMO_BPFFS_DIR;
  if (fs.existsSync(bpffsDir)) {
    const { Dataplane } = require('../dataplane/dataplane') as typeof import('../dataplane/dataplane');
    removed.push(...Dataplane.uninstallPinned(bpffsDir).map((r) => `pin ${r}`));
  }
  if (root) removed.push(...removeTopology(DEMO_PODS.map((p) => p.name), path.join(root, DEMO_CGROUP)));
  fs.rmSync(DEMO_DIR, { recursive: true, force: true });
  fs.rmSync(lockPath(DEMO_BPFFS_DIR), { force: true }); // the demo agent's instance lock file
  log?.info('demo cleaned up', { removed });
  return removed;
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const root = cgroup2Root();
  if (!root) throw new Error('no cgroup v2 mount: the demo needs cgroup v2 (see `sockmesh doctor`)');
  if (process.getuid?.() !== 0) throw new Error('the demo needs root (network namespaces, cgroups, BPF): run it with sudo');
  ensureBpffs();
  const log = createLogger(opts.logLevel, { component: 'demo' });
  // A demo that crashed must not be in the way; a running one must not be torn down.
  if (await socketAnswers(DEMO_API_SOCKET)) {
    throw new Error(`a sockmesh demo is already running (its API answers at ${DEMO_API_SOCKET}): stop it first, or look at it with \`sockmesh status --socket ${DEMO_API_SOCKET}\``);
  }
  cleanupDemo();
  const cgroupRoot = path.join(root, DEMO_CGROUP);
  const children: ChildProcess[] = [];
  let agent: Agent | undefined;
  const progress = (msg: string): void => {
    if (opts.output === 'table') process.stderr.write(`demo: ${msg}\n`);
  };
  try {
    progress('building 5 pods (network namespaces, veths, cgroups)...');
    createTopology(DEMO_PODS, cgroupRoot);
    fs.mkdirSync(DEMO_DIR, { recursive: true });
    const meshFile = path.join(DEMO_DIR, 'mesh.yaml');
    fs.writeFileSync(meshFile, demoMeshYaml(opts.metricsAddress));

    progress('starting the agent...');
    const { parseMesh } = await import('../config/load');
    const parsed = parseMesh(fs.readFileSync(meshFile, 'utf8'), meshFile);
    if (!parsed.ok) throw new Error(`demo mesh file invalid (a bug): ${JSON.stringify(parsed.issues)}`);
    const merged = mergeSettings({ flags: {}, env: {}, file: parsed.agentLayer });
    if (!merged.ok) throw new SettingsError(merged.issues);
    agent = new Agent({ settings: merged.settings, meshFile, log });
    await agent.start();
    const { metricsPort } = await startAddons(agent, log);

    progress('starting workloads...');
    for (const pod of DEMO_PODS.filter((p) => p.argv[0] === 'server')) children.push(spawnPod(pod, path.join(cgroupRoot, pod.name)));
    // Traffic starts once the servers listen: no failed connects in the demo's first second.
    await new Promise((r) => setTimeout(r, 500));
    for (const pod of DEMO_PODS.filter((p) => p.argv[0] !== 'server')) children.push(spawnPod(pod, path.join(cgroupRoot, pod.name)));

    const host = merged.settings.metricsAddress.host;
    if (opts.output === 'table') {
      process.stdout.write([
        '',
        'sockmesh demo running: loadgen -> frontend -> reviews (v1, v2) -> ratings, all through VIPs.',
        `  mesh file (edit it live): ${meshFile}`,
        `  metrics:                  curl -s http://${host}:${metricsPort}/metrics | grep ^sockmesh_`,
        `  connections:              sockmesh connections --follow --socket ${merged.settings.apiSocket}`,
        '  Ctrl-C stops the demo and removes everything it made.',
        '',
      ].join('\n'));
    }

    await new Promise<void>((resolve) => {
      // The duration ends the demo the way Ctrl-C does: the live view must
      // stop with it, or its timer keeps the process (and its output) going.
      const stop = (): void => {
        clearTimeout(timer);
        clearInterval(view);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      const timer = opts.durationS > 0 ? setTimeout(stop, opts.durationS * 1000) : undefined;
      const view = opts.output === 'table'
        ? setInterval(() => process.stdout.write(`\n${new Date().toISOString()}\n${renderEdges('table', agent!.edges().filter((e) => e.labels.side === 'client' && e.labels.service))}`), 2000)
        : undefined;
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    const edges = agent.edges().map((e) => ({ ...e.labels, opened: e.opened, failed: e.failed, bytesSent: e.bytesSent, bytesReceived: e.bytesReceived }));
    return { edges, records: agent.aggregator.records, removed: await teardown(children, agent, log) };
  } catch (err) {
    await teardown(children, agent, log).catch(() => undefined);
    throw err;
  }
}

async function teardown(children: ChildProcess[], agent: Agent | undefined, log: Logger): Promise<string[]> {
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return resolve();
    c.once('exit', () => resolve());
    process.kill(c.pid, 'SIGTERM');
  })));
  children.length = 0;
  const removed = agent ? (await agent.uninstall()).map((r) => `pin ${r}`) : [];
  return [...removed, ...cleanupDemo(log)];
}
