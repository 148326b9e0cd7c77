/**
 * Stable numeric ids for services and backends, derived from their names so a
 * restarted agent computes the same ids as the one that wrote the kernel
 * state (no id table to persist). Collisions probe to the next free id.
 */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Assigns ids to names in a deterministic order; 0 is reserved ("none"). */
export function assignIds(names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const name of [...new Set(names)].sort()) {
    let id = fnv1a32(name) || 1;
    while (used.has(id)) id = (id + 1) >>> 0 || 1;
    used.add(id);
    out.set(name, id);
  }
  return out;
}
