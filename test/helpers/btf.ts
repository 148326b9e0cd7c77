/** Struct layouts as the compiled object's BTF has them (via bpftool's JSON dump). */
import { execFileSync } from 'node:child_process';

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
}

export interface BtfMember {
  name: string;
  offset: number;
  size: number;
  /** Element size for arrays, the size itself for scalars. */
  elemSize: number;
  count: number;
}

export interface BtfStruct {
  name: string;
  size: number;
  members: BtfMember[];
}

export function readBtfStruct(objectFile: string, name: string): BtfStruct | undefined {
  const dump = JSON.parse(execFileSync('bpftool', ['btf', 'dump', 'file', objectFile, '-j'], { encoding: 'utf8' })) as { types: BtfType[] };
  const byId = new Map(dump.types.map((t) => [t.id, t]));
  const resolve = (id: number): BtfType => {
    let t = byId.get(id);
    while (t && ['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = byId.get(t.type_id!);
    if (!t) throw new Error(`BTF type ${id} not found in ${objectFile}`);
    return t;
  };
  const sizeOf = (t: BtfType): number => {
    switch (t.kind) {
      case 'ARRAY': return sizeOf(resolve(t.type_id!)) * t.nr_elems!;
      case 'PTR': return 8;
      default:
        if (t.size === undefined) throw new Error(`BTF type ${t.id} (${t.kind}) has no size`);
        return t.size;
    }
  };
  // Kernel structs pulled in for CO-RE (with bitfields) are skipped: only the named one is read.
  const t = dump.types.find((x) => x.kind === 'STRUCT' && x.name === name);
  if (!t?.members) return undefined;
  return {
    name: t.name,
    size: t.size!,
    members: t.members.map((m) => {
      if (m.bitfield_size) throw new Error(`${t.name}.${m.name} is a bitfield: shared structs must not use them`);
      const mt = resolve(m.type_id);
      const size = sizeOf(mt);
      const elemSize = mt.kind === 'ARRAY' ? sizeOf(resolve(mt.type_id!)) : size;
      return { name: m.name, offset: m.bits_offset / 8, size, elemSize, count: size / elemSize };
    }),
  };
}
