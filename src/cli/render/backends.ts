/** `sockmesh backends SERVICE`: one row per backend of each port. */
import type { BackendView } from '../../agent/view';
import { humanShare } from './format';
import { OutputFormat, listObject, toJson, toYaml } from './output';
import { renderTable } from './table';

function labels(b: BackendView): string {
  const entries = Object.entries(b.labels).sort(([a], [c]) => a.localeCompare(c));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

export function renderBackends(format: OutputFormat, backends: readonly BackendView[]): string {
  switch (format) {
    case 'json': return toJson(listObject(backends));
    case 'yaml': return toYaml(listObject(backends));
    case 'table':
    case 'wide': {
      const wide = format === 'wide';
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
    }
  }
}
