/**
 * The validated mesh model to what the dataplane and the telemetry need:
 * dataplane services (one per service port) and the id -> name directory.
 * Pure apart from reading cgroup ids from the cgroup filesystem (the
 * workloads' subtrees, again whenever a record comes from a cgroup not seen:
 * the directory's fallback).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { MeshConfig } from '../config/model';
import { serviceKey } from '../config/model';
import { desiredState, DesiredService, ServicePortSpec } from '../dataplane/desired';
import { WorkloadCgroups } from '../platform/workload-cgroups';
import { Directory, type WorkloadName } from '../telemetry/directory';

/**
 * One dataplane service per service port and address family: a connect keeps
 * its family (the kernel cannot send an IPv4 socket to an IPv6 backend), so a
 * dual-stack service's IPv4 VIPs get its IPv4 backends and its IPv6 VIPs its
 * IPv6 ones. The IPv6 half of a dual-stack port is named "<port>-v6".
 */
export function servicePorts(config: MeshConfig): ServicePortSpec[] {
  return config.services.flatMap((svc) => {
    const dual = svc.vips.some((v) => v.family === 4) && svc.vips.some((v) => v.family === 6);
    return svc.ports.flatMap((p) => ([4, 6] as const).flatMap((family): ServicePortSpec[] => {
      const vips = svc.vips.filter((v) => v.family === family);
      if (vips.length === 0) return [];
      const name = p.name ?? String(p.port);
      return [{
        service: serviceKey(svc),
        portName: dual && family === 6 ? `${name}-v6` : name,
        frontends: vips.map((vip) => ({ vip, port: p.port, protocol: p.protocol })),
        // A named targetPort resolves per backend; backends without that name are not this port's.
        backends: svc.backends.filter((b) => b.address.family === family)
          .flatMap((b) => {
            const port = typeof p.targetPort === 'number' ? p.targetPort : b.ports[p.targetPort];
            return port === undefined ? [] : [{ addr: b.address, port, weight: b.weight, labels: b.labels }];
          }),
      }];
    }));
  });
}

/** What the dataplane should hold for a mesh: one service per service port and family. Pure. */
export function desiredOf(config: MeshConfig): DesiredService[] {
  return desiredState(servicePorts(config));
}

export interface Compiled {
  desired: DesiredService[];
  directory: Directory;
  /** the directory's index of workload subtrees: the agent follows it (follow()) once the kernel has the config */
  cgroups: WorkloadCgroups<WorkloadName>;
  /** workloads whose cgroup does not exist yet (picked up when it appears) */
  missingCgroups: string[];
  /**
   * workloads whose cgroup is not the agent's cgroup root or below it: the
   * programs never see their sockets, so they get neither VIPs nor telemetry
   */
  outsideRoot: string[];
}

/**
 * Whether cgroup (relative to the mount) is root or lies below it. Both are
 * paths checkCgroupPath accepted: never empty, no trailing or doubled "/".
 */
export function underCgroup(cgroup: string, root: string): boolean {
  return cgroup === root || cgroup.startsWith(`${root}/`);
}

/** cgroup v2 id of a directory: its inode number (the kernfs node id). */
export function cgroupId(dir: string): number | undefined {
  try {
    return Number(fs.statSync(dir, { bigint: true }).ino);
  } catch {
    return undefined;
  }
}

/** `desired`: when already computed from this config (the loader's worker does, off the agent's thread). */
export function compile(config: MeshConfig, cgroupMount: string, cgroupRoot: string,
  desired: DesiredService[] = desiredOf(config)): Compiled {
  const directory = new Directory();
  for (const s of desired) {
    directory.services.set(s.id, { service: s.service, portName: s.portName });
    for (const b of s.backends) directory.addBackend(b.id, { endpoint: b.endpoint, labels: b.labels, serviceId: s.id });
  }
  const missingCgroups: string[] = [];
  const outsideRoot: string[] = [];
  for (const w of config.workloads) {
    const outside = !underCgroup(w.cgroup, cgroupRoot);
    if (outside) outsideRoot.push(w.cgroup);
    const id = cgroupId(path.join(cgroupMount, w.cgroup));
    // Outside the root it is not enrolled, made or not: one warning says so.
    if (id !== undefined) directory.workloads.set(id, { name: w.name, namespace: w.namespace });
    else if (!outside) missingCgroups.push(w.cgroup);
  }
  const cgroups = new WorkloadCgroups(cgroupMount, config.workloads.map((w) => ({ cgroup: w.cgroup, workload: { name: w.name, namespace: w.namespace } })));
  directory.setWorkloadFallback((id) => cgroups.lookup(id));
  return { desired, directory, cgroups, missingCgroups, outsideRoot };
}
