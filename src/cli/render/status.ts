/** `sockmesh status`: the agent's state as aligned fields (table/wide) or the full object. */
import type { AgentStatus } from '../../agent/view';
import { humanAge } from './format';
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
        ['Services', `${s.services} (${s.frontends} frontends)`],
        ['Connections', `${s.openConnections} open, ${s.records} records`],
        ['Ring buffer', `${s.ringbuf.records} records, ${s.ringbuf.dropped} dropped, ${s.ringbuf.decodeErrors} decode errors`],
        ['OTLP', otlp],
      ];
      return renderFields(fields);
    }
  }
}
