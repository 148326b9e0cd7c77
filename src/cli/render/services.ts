/** `sockmesh services`: one row per service. */
import type { ServiceView } from '../../agent/view';
import { OutputFormat, renderList } from './output';
import { renderTable } from './table';

/** ServiceView.name is namespace/name; the NAMESPACE column already says the first half. */
function shortName(s: ServiceView): string {
  const prefix = `${s.namespace}/`;
  return s.name.startsWith(prefix) ? s.name.slice(prefix.length) : s.name;
}

function ports(s: ServiceView, wide: boolean): string {
  if (s.ports.length === 0) return '-';
  return s.ports
    .map((p) => (wide ? `${p.name ? `${p.name}:` : ''}${p.port}->${p.targetPort}/${p.protocol}` : `${p.port}/${p.protocol}`))
    .join(',');
}

function verdicts(s: ServiceView): string {
  const entries = Object.entries(s.verdicts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

export function renderServices(format: OutputFormat, services: readonly ServiceView[]): string {
  return renderList(format, services, (wide) => {
    const header = ['NAMESPACE', 'NAME', 'VIPS', 'PORTS', 'BACKENDS', ...(wide ? ['VERDICTS'] : [])];
    const rows = services.map((s) => [
      s.namespace,
      shortName(s),
      s.vips.length > 0 ? s.vips.join(',') : '-',
      ports(s, wide),
      String(s.backends),
      ...(wide ? [verdicts(s)] : []),
    ]);
    return renderTable(header, rows);
  });
}
