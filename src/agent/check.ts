/**
 * What an agent would make of a mesh file, without a kernel: the schema and
 * cross-checks, the agent settings it carries, and whether its services fit
 * the kernel tables of this build - so a file can be checked in CI before it
 * reaches a node. Pure apart from the table sizes, which the caller reads.
 */
import { formatConfigIssue, formatSettingsIssue } from '../config/errors';
import { parseMesh } from '../config/load';
import { mergeSettings } from '../config/settings';
import { capacityError, freshPeak, overflows, TableRoom } from '../dataplane/capacity';
import { desiredState } from '../dataplane/desired';
import { servicePorts, underCgroup } from './compile';

export type MeshCheck =
  | {
    file: string;
    valid: true;
    services: number;
    /** dataplane services: one per service port and address family */
    servicePorts: number;
    frontends: number;
    backends: number;
    slots: number;
    workloads: number;
    room: TableRoom;
    /** What the agent would apply but warn about: workloads its cgroupRoot (as the file sets it) does not enroll. */
    warnings: string[];
  }
  | { file: string; valid: false; errors: string[] };

export function checkMesh(text: string, file: string, room: TableRoom): MeshCheck {
  const parsed = parseMesh(text, file);
  if (!parsed.ok) return { file, valid: false, errors: parsed.issues.map(formatConfigIssue) };
  // The file's own agent settings; flags and environment belong to the node.
  const settings = mergeSettings({ flags: {}, env: {}, file: parsed.agentLayer });
  if (!settings.ok) return { file, valid: false, errors: settings.issues.map(formatSettingsIssue) };
  const desired = desiredState(servicePorts(parsed.config));
  const peak = freshPeak(desired);
  const over = overflows(peak, room);
  if (over.length) return { file, valid: false, errors: [`${file}: ${capacityError(over).message}`] };
  const root = settings.settings.cgroupRoot;
  const warnings = parsed.config.workloads.filter((w) => !underCgroup(w.cgroup, root)).map((w) =>
    `workload ${w.namespace}/${w.name}: cgroup ${w.cgroup} is outside cgroupRoot ${root} (as this file sets it): not enrolled, no VIPs and no telemetry`);
  return {
    file,
    valid: true,
    services: parsed.config.services.length,
    servicePorts: desired.length,
    frontends: peak.addedFrontends,
    backends: parsed.config.services.reduce((n, s) => n + s.backends.length, 0),
    slots: peak.newSlots,
    workloads: parsed.config.workloads.length,
    room,
    warnings,
  };
}
