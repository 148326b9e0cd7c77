/**
 * Addresses as the mesh programs hold them: 16 bytes, network order, IPv4 as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d), so one key shape serves both families.
 */
import net from 'node:net';

export type Family = 4 | 6;

export interface MeshAddr {
  family: Family;
  /** 16 bytes, network order (IPv4-mapped for IPv4). */
  bytes: Buffer;
  text: string;
}

const V4_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

export function parseAddr(text: string): MeshAddr {
  if (net.isIPv4(text)) {
    const b = Buffer.concat([V4_PREFIX, Buffer.from(text.split('.').map(Number))]);
    return { family: 4, bytes: b, text };
  }
  if (net.isIPv6(text)) return { family: 6, bytes: ipv6Bytes(text), text: formatAddr(ipv6Bytes(text)) };
  throw new Error(`not an IP address: ${text}`);
}

function ipv6Bytes(text: string): Buffer {
  // Expand "::" and any trailing dotted IPv4 into eight 16-bit groups.
  let t = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const p = v4[1]!.split('.').map(Number);
    t = t.slice(0, -v4[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = t.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const tl = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return b;
}

export function isV4Mapped(b: Buffer): boolean {
  return b.subarray(0, 12).equals(V4_PREFIX);
}

/** Text form of 16 address bytes: dotted quad when IPv4-mapped. */
export function formatAddr(b: Buffer): string {
  if (isV4Mapped(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Address from the u32[4] a decoded record carries (network order words read little-endian). */
export function addrFromWords(words: readonly number[]): Buffer {
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt32LE(w >>> 0, i * 4));
  return b;
}

export function wordsFromAddr(b: Buffer): number[] {
  return [0, 4, 8, 12].map((o) => b.readUInt32LE(o));
}
