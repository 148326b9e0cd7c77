/**
 * The four output formats. table and wide are for people (humanized, see
 * format.ts); json and yaml print the full objects with raw numbers. Socket
 * cookies are u64 bigints, which neither JSON nor a double holds exactly,
 * so they are printed as decimal strings.
 */
import YAML from 'yaml';

export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function isOutputFormat(v: unknown): v is OutputFormat {
  return OUTPUT_FORMATS.some((f) => f === v);
}

/** A JSON-representable copy: bigints become decimal strings, undefined members are dropped. */
export function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}

export function toJson(value: unknown): string {
  return `${JSON.stringify(plain(value), null, 2)}\n`;
}

/** One line, for streams (one object per line). */
export function toJsonLine(value: unknown): string {
  return `${JSON.stringify(plain(value))}\n`;
}

export function toYaml(value: unknown): string {
  return YAML.stringify(plain(value));
}

/** One document of a stream, `---` first so a reader can split them. */
export function toYamlDoc(value: unknown): string {
  return `---\n${toYaml(value)}`;
}

/** Lists print as { items: [...] }, the way kubectl does, so a script can tell an empty list from nothing. */
export function listObject<T>(items: readonly T[]): { items: readonly T[] } {
  return { items };
}

/** A list in any format: json/yaml as `{ items }`, table/wide from `table(wide)`. */
export function renderList<T>(format: OutputFormat, items: readonly T[], table: (wide: boolean) => string): string {
  if (format === 'json') return toJson(listObject(items));
  if (format === 'yaml') return toYaml(listObject(items));
  return table(format === 'wide');
}
