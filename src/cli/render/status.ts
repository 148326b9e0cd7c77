/** `sockmesh status`: the agent's state as aligned fields (table/wide) or the full object. */
import type { AgentStatus } from '../../agent/view';
import { humanAge, humanDuration, humanShare } from './format';
import { OutputFormat, toJson, toYaml } from './output';
import { renderFields } from './table';

function configLine(s: AgentStatus, now: number, wide: boolean): string {
  const c = s.config;
  const applied = c.appliedAt ? `applied ${humanAge(c.appliedAt, now)} ago${wide ? ` (${c.appliedAt})` : ''}` : 'not applied yet';
  const lines = [`${c.file}, ${applied}`];
  if (c.rejected) {
    // The running state is older than the file: say so first, then why.
    lines.push(`newer file REJECTED ${humanAge(c.rejected.at, now)} ago${wide ? ` (${c.rejected.at})` : ''}, running state kept:`);
    for (const e of c.rejected.errors) lines.push(`  ${e}`);
  }
  for (const w of c.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

/**
 * With bpfStats on: what the mesh programs cost the kernel since the agent
 * started - the busiest hook first, time per run, and the CPU they took
 * together; wide adds the run counts.
 */
function bpfStatsLine(s: NonNullable<AgentStatus['bpfStats']>, now: number, wide: boolean): string {
  const ran = s.programs.filter((p) => p.runs > 0).sort((a, b) => b.runNs - a.runNs);
  const total = ran.reduce((a, p) => a + p.runNs, 0);
  const wallNs = Math.max(1, now - Date.parse(s.since)) * 1e6;
  const head = `on for ${humanAge(s.since, now)}: ${humanShare(total / wallNs)} of one CPU in the mesh programs`;
  if (ran.length === 0) return `${head} (none ran yet)`;
  return [head, ...ran.map((p) => `  ${p.hook} ${humanDuration(p.runNs / p.runs)}/run${wide ? ` x ${p.runs} run${p.runs === 1 ? '' : 's'}` : ''}`)].join('\n');
}

function edgesLine(e: NonNullable<AgentStatus['edges']>): string {
  const unknown = e.unattributed === undefined ? ''
    : e.unattributed === 0 ? '; every connection under its workload'
    : `; ${e.unattributed} connection(s) under workload "unknown": their cgroups are in no workload of the mesh file`;
  return `${e.live} (${e.ttlMs > 0 ? `${e.expired} expired after ${humanDuration(e.ttlMs * 1e6)} without a record` : 'never expire'})${unknown}`;
}

export function renderStatus(format: OutputFormat, s: AgentStatus, now = Date.now()): string {
  switch (format) {
    case 'json': return toJson(s);
    case 'yaml': return toYaml(s);
    case 'table':
    case 'wide': {
      const wide = format === 'wide';
      const otlp = s.otlp ? `${s.otlp.endpoint}: ${s.otlp.exported} exported, ${s.otlp.failed} failed, ${s.otlp.dropped} dropped` : 'off';
      const fields: [string, string][] = [
        ['Instance', s.instance],
        ['Version', s.version],
        ['Uptime', humanAge(s.startedAt, now)],
        ...(wide ? ([['Started', s.startedAt], ['PID', String(s.pid)]] as [string, string][]) : []),
        ['Dataplane', s.dataplaneChanges.length === 0 ? s.dataplane
          : `${s.dataplane}, ${s.dataplaneChanges.length} change(s) to the pinned state${wide ? `:\n  ${s.dataplaneChanges.join('\n  ')}` : ' (-o wide lists them)'}`],
        ...(wide ? ([['Cgroup', s.cgroup], ['BPF fs', s.bpffsDir]] as [string, string][]) : []),
        ['Config', configLine(s, now, wide)],
        ['Services', `${s.services} (${s.frontends} frontends)${s.workloads === undefined ? '' : `, ${s.workloads} workload(s)`}`],
        ['Connections', `${s.openConnections} open, ${s.records} records`],
        ...(s.edges ? ([['Edges', edgesLine(s.edges)]] as [string, string][]) : []),
        ['Ring buffer', `${s.ringbuf.records} records, ${s.ringbuf.dropped} dropped, ${s.ringbuf.decodeErrors} decode errors`],
        ['OTLP', otlp],
        ...(s.bpfStats ? ([['BPF stats', bpfStatsLine(s.bpfStats, now, wide)]] as [string, string][]) : []),
      ];
      return renderFields(fields);
    }
  }
}
