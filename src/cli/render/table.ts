/**
 * kubectl-style columns: an upper-case header, cells left-aligned and padded
 * to the widest cell of their column, three spaces apart, no trailing blanks.
 */

const GAP = '   ';

function line(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join(GAP).trimEnd();
}

function widthsOf(rows: readonly (readonly string[])[], columns: number): number[] {
  const widths = new Array<number>(columns).fill(0);
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return widths;
}

/** Header plus rows, every line ending in a newline. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = widthsOf([header, ...rows], header.length);
  return [header, ...rows].map((r) => `${line(r, widths)}\n`).join('');
}

/**
 * For --follow: the widths are fixed by the header and the first rows (the
 * replay); later rows reuse them, so a row is printed the moment it arrives.
 * A later cell wider than its column pushes the rest of its row right.
 */
export class StreamTable {
  private readonly widths: number[];

  constructor(
    private readonly header: readonly string[],
    firstRows: readonly (readonly string[])[] = [],
    /** per column, so typical later values fit even when the replay is empty */
    minWidths: readonly number[] = [],
  ) {
    this.widths = widthsOf([header, ...firstRows], header.length).map((w, i) => Math.max(w, minWidths[i] ?? 0));
  }

  head(): string {
    return `${line(this.header, this.widths)}\n`;
  }

  row(cells: readonly string[]): string {
    return `${line(cells, this.widths)}\n`;
  }
}

/**
 * "Key:  value" lines with the values aligned, for single objects (status).
 * A multi-line value continues under its first line.
 */
export function renderFields(fields: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...fields.map(([k]) => k.length + 1));
  const indent = ' '.repeat(w + 2);
  return fields
    .map(([k, v]) => {
      const [first = '', ...rest] = v.split('\n');
      return [`${`${k}:`.padEnd(w)}  ${first}`.trimEnd(), ...rest.map((l) => `${indent}${l}`.trimEnd())].join('\n');
    })
    .map((l) => `${l}\n`)
    .join('');
}
