/**
 * A mesh dataplane for one test: a netns (loopback only), a cgroup for the
 * clients, the mesh programs attached to it and pinned under a scratch bpffs
 * directory - all registered with the test's Cleanup.
 */
import fs from 'node:fs';
import { Dataplane, DataplaneOptions } from '../../src/dataplane/dataplane';
import { parseAddr } from '../../src/dataplane/addr';
import type { BackendSpec, ServicePortSpec, Protocol } from '../../src/dataplane/desired';
import { ScratchCgroup } from '../../src/platform/cgroup';
import { Cleanup } from './cleanup';
import { TestNetns } from './netns';
import { startFixture } from './child';

export interface MeshEnv {
  ns: TestNetns;
  cg: ScratchCgroup;
  bpffsDir: string;
  dp: Dataplane;
}

export function meshEnv(cleanup: Cleanup, tag: string, reportIntervalMs = 10_000, opts: Pick<DataplaneOptions, 'trackRtt' | 'wakeBytes' | 'ringBytes'> = {}): MeshEnv {
  const ns = cleanup.add('netns', TestNetns.create(tag), (n) => n.remove());
  const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-${tag}`), (c) => c.remove());
  const bpffsDir = `/sys/fs/bpf/sockmesh-test-${process.pid}-${tag}`;
  cleanup.defer('bpffs dir', () => fs.rmSync(bpffsDir, { recursive: true, force: true }));
  const dp = cleanup.add('dataplane', Dataplane.open({ bpffsDir, cgroupPath: cg.path, reportIntervalMs, ...opts }), (d) => d.uninstall());
  return { ns, cg, bpffsDir, dp };
}

/** Starts backend servers inside the netns; returns their ports. */
export async function startBackends(cleanup: Cleanup, env: Pick<MeshEnv, 'ns'>, host: string, n: number): Promise<number[]> {
  const f = await startFixture<{ ports: number[] }>(undefined, 'backend', [host, Array(n).fill(0).join(',')], env.ns.prefix());
  cleanup.defer('backends', f.stop);
  return f.ready.ports;
}

export function servicePort(name: string, vips: string[], port: number, protocol: Protocol,
  backends: { host: string; port: number; weight?: number }[]): ServicePortSpec {
  return {
    service: `default/${name}`,
    portName: String(port),
    frontends: vips.map((v) => ({ vip: parseAddr(v), port, protocol })),
    backends: backends.map((b): BackendSpec => ({ addr: parseAddr(b.host), port: b.port, weight: b.weight ?? 1, labels: {} })),
  };
}
