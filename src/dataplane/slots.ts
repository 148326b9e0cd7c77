/**
 * Weights to slots: the kernel picks a uniformly random slot, so a backend's
 * share is its slot count over the total. Weights are reduced by their GCD
 * and, past MESH_MAX_SLOTS, scaled down by largest remainder (a positive
 * weight always keeps at least one slot).
 */
export function weightsToSlots(weights: readonly number[], maxSlots: number): number[] {
  const positive = weights.filter((w) => w > 0);
  if (positive.length === 0) return weights.map(() => 0);
  if (positive.length > maxSlots) throw new Error(`${positive.length} backends with weight > 0 exceed ${maxSlots} slots`);
  const g = positive.reduce(gcd);
  let counts = weights.map((w) => w / g);
  const total = counts.reduce((a, b) => a + b, 0);
  if (total > maxSlots) {
    const spare = maxSlots - positive.length; // one slot each is guaranteed
    const extra = counts.map((c) => (c > 0 ? ((c - 1) * spare) / (total - positive.length) : 0));
    const floors = extra.map(Math.floor);
    let left = spare - floors.reduce((a, b) => a + b, 0);
    const order = extra.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0]);
    for (const [, i] of order) {
      if (left <= 0) break;
      if (counts[i]! > 0) { floors[i]! += 1; left--; }
    }
    counts = counts.map((c, i) => (c > 0 ? 1 + floors[i]! : 0));
  }
  return counts;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Slot table: backend index per slot, interleaved so neighbours differ. */
export function slotTable(counts: readonly number[]): number[] {
  const left = [...counts];
  const out: number[] = [];
  for (let more = true; more; ) {
    more = false;
    left.forEach((n, i) => {
      if (n > 0) {
        out.push(i);
        left[i] = n - 1;
        more = true;
      }
    });
  }
  return out;
}
