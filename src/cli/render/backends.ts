/** `sockmesh backends SERVICE`: one row per backend of each port. */
import type { BackendView } from '../../agent/view';
import { humanShare } from './format';
import { OutputFormat, renderList } from './output';
import { renderTable } from './table';

function labels(b: BackendView): string {
  const entries = Object.entries(b.labels).sort(([a], [c]) => a.localeCompare(c));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

export function renderBackends(format: OutputFormat, backends: readonly BackendView[]): string {
  return renderList(format, backends, (wide) => {
    const header = [...(wide ? ['SERVICE'] : []), 'PORT', 'ENDPOINT', 'WEIGHT', 'SHARE', 'CONNECTIONS', 'FAILED', ...(wide ? ['LABELS'] : [])];
    const rows = backends.map((b) => [
      ...(wide ? [b.service] : []),
      b.port,
      b.endpoint,
      String(b.weight),
      humanShare(b.share),
      String(b.connections),
      String(b.failed),
      ...(wide ? [labels(b)] : []),
    ]);
    return renderTable(header, rows);
  });
}
