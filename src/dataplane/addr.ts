/**
 * Addresses as the mesh programs hold them: 16 bytes, network order, IPv4 as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d), so one key shape serves both families.
 * Parsing and text forms are the config model's (parseIp, formatIpBytes);
 * this module adds what the maps need on top.
 */
import os from 'node:os';
import { formatIpBytes, IpAddress, parseIp } from '../config/model';

export type MeshAddr = IpAddress;

/** An address for the dataplane; throws on text that is not one. */
export function parseAddr(text: string): MeshAddr {
  const r = parseIp(text);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

/** Text form of 16 address bytes: dotted quad when IPv4-mapped. */
export const formatAddr = formatIpBytes;

/*
 * The structs hold an address as __u32[4] in network byte order; layouts read
 * and write those words in host order, so the conversions do too and the
 * bytes come out unchanged on any host.
 */
const LE = os.endianness() === 'LE';

/** Address bytes from the u32[4] of a decoded struct. */
export function addrFromWords(words: readonly number[]): Buffer {
  const b = Buffer.alloc(16);
  words.forEach((w, i) => (LE ? b.writeUInt32LE(w >>> 0, i * 4) : b.writeUInt32BE(w >>> 0, i * 4)));
  return b;
}

/** The u32[4] to encode address bytes into a struct. */
export function wordsFromAddr(b: Buffer): number[] {
  return [0, 4, 8, 12].map((o) => (LE ? b.readUInt32LE(o) : b.readUInt32BE(o)));
}
