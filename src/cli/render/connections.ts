/**
 * `sockmesh connections`: one row per connection record, as a whole list or
 * (--follow) one row at a time with the columns fixed up front. Records carry
 * the agent's names for their ids (labels): table shows workload and
 * service, wide adds the backend next to the raw ids; json/yaml print the
 * labels with the rest of the record.
 */
import type { NamedRecord } from '../../agent/view';
import type { Connection } from '../../telemetry/record';
import { errnoName, hostPort, humanBytes, humanDuration, humanMicros } from './format';
import { OutputFormat, renderList, toJsonLine, toYamlDoc } from './output';
import { StreamTable, renderTable } from './table';

const KIND_LABEL: Record<Connection['kind'], string> = { close: 'closed', interim: 'open', connect_failed: 'failed' };

function result(r: Connection): string {
  switch (r.kind) {
    case 'close': return r.error !== 0 ? `${r.closeCause} ${errnoName(r.error)}` : r.closeCause;
    case 'connect_failed': return errnoName(r.error);
    case 'interim': return '-';
  }
}

function header(wide: boolean): string[] {
  return wide
    ? ['TIME', 'COOKIE', 'KIND', 'SIDE', 'CGROUP', 'WORKLOAD', 'LOCAL', 'REMOTE', 'VIP', 'SVC-ID', 'SERVICE', 'BACKEND-ID', 'BACKEND',
      'DURATION', 'CONNECT', 'SRTT', 'RETRANS', 'SENT', 'RECEIVED', 'RESULT']
    : ['TIME', 'KIND', 'SIDE', 'WORKLOAD', 'SERVICE', 'LOCAL', 'REMOTE', 'VIP', 'DURATION', 'SENT', 'RECEIVED', 'RESULT'];
}

/** The record's time of day on this terminal's clock ('-' from an agent that does not say): json/yaml keep the full time. */
export function timeOfDay(time: string | undefined): string {
  if (time === undefined) return '-';
  const d = new Date(time);
  if (Number.isNaN(d.getTime())) return '-';
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** A label cell: '' (non-service traffic) prints as '-', like an absent VIP. */
function name(label: string): string {
  return label === '' ? '-' : label;
}

function row(r: NamedRecord, wide: boolean): string[] {
  const vip = r.vip ? hostPort(r.vip) : '-';
  const l = r.labels;
  if (!wide) {
    return [
      timeOfDay(r.time), KIND_LABEL[r.kind], r.side, name(l.workload), name(l.service), hostPort(r.local), hostPort(r.remote), vip,
      humanDuration(r.durationNs), humanBytes(r.bytesSent), humanBytes(r.bytesReceived), result(r),
    ];
  }
  return [
    timeOfDay(r.time), r.cookie.toString(), KIND_LABEL[r.kind], r.side, String(r.cgroupId), name(l.workload), hostPort(r.local), hostPort(r.remote), vip,
    String(r.serviceId), name(l.service), String(r.backendId), name(l.backend), humanDuration(r.durationNs), humanMicros(r.connectUs),
    humanMicros(r.srttUs.last), String(r.retransmits), humanBytes(r.bytesSent), humanBytes(r.bytesReceived), result(r),
  ];
}

export function renderConnections(format: OutputFormat, records: readonly NamedRecord[]): string {
  return renderList(format, records, (wide) => renderTable(header(wide), records.map((r) => row(r, wide))));
}

/** Typical widths of the name and address columns, so a follow that starts empty still lines up. */
const MIN_WIDTHS: Record<'table' | 'wide', number[]> = {
  table: [12, 6, 6, 20, 24, 21, 21, 21],
  wide: [12, 20, 6, 6, 6, 20, 21, 21, 21, 6, 24, 10, 21],
};

/**
 * Rendering for --follow: `start` prints the header (tables only) and the
 * replayed records, `next` one live record. json is one object per line,
 * yaml one document per record.
 */
export class ConnectionStream {
  private table: StreamTable | undefined;

  constructor(private readonly format: OutputFormat) {}

  start(replay: readonly NamedRecord[]): string {
    if (this.format === 'table' || this.format === 'wide') {
      const wide = this.format === 'wide';
      const rows = replay.map((r) => row(r, wide));
      this.table = new StreamTable(header(wide), rows, MIN_WIDTHS[this.format]);
      return this.table.head() + rows.map((r) => this.table!.row(r)).join('');
    }
    return replay.map((r) => this.next(r)).join('');
  }

  next(r: NamedRecord): string {
    switch (this.format) {
      case 'json': return toJsonLine(r);
      case 'yaml': return toYamlDoc(r);
      case 'table':
      case 'wide':
        this.table ??= new StreamTable(header(this.format === 'wide'), [], MIN_WIDTHS[this.format]);
        return this.table.row(row(r, this.format === 'wide'));
    }
  }
}
