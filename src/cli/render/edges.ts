/**
 * `sockmesh edges` (and the demo's live view): one row per edge, source
 * workload -> service -> backend, with what the agent counted on it. Averages
 * are over the connections that measured them (a connect time on the client
 * side only; an SRTT when the kernel took a sample).
 */
import type { Edge } from '../../telemetry/aggregator';
import { humanAge, humanBytes, humanMicros } from './format';
import { OutputFormat, renderList } from './output';
import { renderTable } from './table';

const avg = (sum: number, n: number): number => (n > 0 ? Math.round(sum / n) : 0);

/** Sorted the way people scan it: by workload, then service, then backend; client before server. */
export function sortEdges(edges: readonly Edge[]): Edge[] {
  const key = (e: Edge): string => `${e.labels.workload}|${e.labels.service}|${e.labels.backend}|${e.labels.side}`;
  return [...edges].sort((a, b) => key(a).localeCompare(key(b)));
}

/** showSide: a SIDE column in the table too (both sides listed: rows would otherwise look alike). */
export function renderEdges(format: OutputFormat, edges: readonly Edge[], now = Date.now(), showSide = false): string {
  const sorted = sortEdges(edges);
  return renderList(format, sorted, (wide) => {
    const side = wide || showSide;
    const header = [...(side ? ['SIDE'] : []), 'WORKLOAD', 'SERVICE', 'BACKEND', 'CONNS', 'FAILED', 'CONNECT', 'SRTT', 'BYTES', 'RESETS',
      ...(wide ? ['SENT', 'RECEIVED', 'RETRANS', 'TIMEOUTS', 'LAST'] : [])];
    const rows = sorted.map((e) => [
      ...(side ? [e.labels.side] : []),
      e.labels.workload,
      e.labels.service || '-',
      e.labels.backend || '-',
      String(e.opened),
      String(e.failed),
      humanMicros(avg(e.connectUsSum, e.connectUsCount)),
      humanMicros(avg(e.srttUsSum, e.srttUsCount)),
      humanBytes(e.bytesSent + e.bytesReceived),
      String(e.resetsSent + e.resetsReceived),
      ...(wide ? [humanBytes(e.bytesSent), humanBytes(e.bytesReceived), String(e.retransmits), String(e.timeouts),
        e.lastSeenMs > 0 ? humanAge(new Date(e.lastSeenMs).toISOString(), now) : '-'] : []),
    ]);
    return renderTable(header, rows);
  });
}
