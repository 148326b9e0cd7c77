/** `sockmesh backends SERVICE`: one row per backend of each port. */
import type { BackendView } from '../../agent/view';
import { humanShare } from './format';
import { OutputFormat, renderList } from './output';
import { renderTable } from './table';

function labels(b: BackendView): string {
  const entries = Object.entries(b.labels).sort(([a], [c]) => a.localeCompare(c));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** SHARE is what the weights ask; RECENT what the latest connections did, "74.6% of 197" ('-' with none recent). */
function recentShare(b: BackendView): string {
  return b.recentOf > 0 ? `${humanShare(b.recent / b.recentOf)} of ${b.recentOf}` : '-';
}

export function renderBackends(format: OutputFormat, backends: readonly BackendView[]): string {
  return renderList(format, backends, (wide) => {
    const header = [...(wide ? ['SERVICE'] : []), 'PORT', 'ENDPOINT', 'WEIGHT', 'SHARE', 'RECENT', 'CONNECTIONS', 'FAILED', ...(wide ? ['LABELS'] : [])];
    const rows = backends.map((b) => [
      ...(wide ? [b.service] : []),
      b.port,
      b.endpoint,
      String(b.weight),
      humanShare(b.share),
      recentShare(b),
      String(b.connections),
      String(b.failed),
      ...(wide ? [labels(b)] : []),
    ]);
    return renderTable(header, rows);
  });
}
