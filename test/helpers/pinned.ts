/**
 * What an instance has pinned, as the kernel identifies it: tests compare
 * these before and after something that must leave the kernel state alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap, Link } from '../../src/bpf';

/** The id of every pinned map and link: equal ids mean adopted, not rebuilt. */
export function pinnedIds(bpffsDir: string): { maps: Record<string, number>; links: Record<string, number> } {
  const maps: Record<string, number> = {};
  const links: Record<string, number> = {};
  for (const name of fs.readdirSync(path.join(bpffsDir, 'maps'))) {
    const m = BpfMap.fromPin(path.join(bpffsDir, 'maps', name));
    maps[name] = m.info.id;
    m.close();
  }
  for (const name of fs.readdirSync(path.join(bpffsDir, 'links'))) {
    const l = Link.fromPin(path.join(bpffsDir, 'links', name));
    links[name] = l.info().id!;
    l.close();
  }
  return { maps, links };
}

/** A pinned map's entries as sorted key=value hex strings. */
export function dumpPinned(bpffsDir: string, map: string): string[] {
  const m = BpfMap.fromPin(path.join(bpffsDir, 'maps', map));
  try {
    return m.entries().map((e) => `${e.key.toString('hex')}=${e.value.toString('hex')}`).sort();
  } finally {
    m.close();
  }
}
