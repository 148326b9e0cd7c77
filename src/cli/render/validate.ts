/** `sockmesh validate` output: a line per file, its errors below it. */
import type { MeshCheck } from '../../agent/check';
import { OutputFormat, toJson, toYaml } from './output';

function summary(c: Extract<MeshCheck, { valid: true }>): string {
  return `valid: ${c.services} services (${c.servicePorts} service ports), ${c.frontends} frontends of ${c.room.frontends}, ` +
    `${c.backends} backends, ${c.slots} backend slots of ${c.room.slots}, ${c.workloads} workloads`;
}

export function renderChecks(format: OutputFormat, checks: readonly MeshCheck[]): string {
  if (format === 'json') return toJson(checks);
  if (format === 'yaml') return toYaml(checks);
  return checks.map((c) => (c.valid
    ? `${c.file}: ${summary(c)}\n${c.warnings.map((w) => `  warning: ${w}\n`).join('')}`
    : `${c.file}: invalid, ${c.errors.length} error${c.errors.length === 1 ? '' : 's'}\n${c.errors.map((e) => `  ${e}\n`).join('')}`)).join('');
}
