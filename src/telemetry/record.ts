/**
 * A connection record as the agent uses it, decoded once from the kernel's
 * mesh_conn_event (src/bpf/layouts/mesh.ts). Kinds are a discriminated union.
 */
import { MeshConnEvent, MeshConnEventV1, MESH_CLOSE_CAUSES, CloseCause, MeshEventKind, MESH_REC_FIRST, MESH_CONN_EVENT_V2_SIZE } from '../bpf/layouts/mesh';
import { formatAddr } from '../dataplane/addr';

interface RecordBase {
  cookie: bigint;
  /** cgroup v2 id of the socket: the workload */
  cgroupId: number;
  side: 'client' | 'server';
  /** IP version on the wire: 4 for IPv4 on a dual-stack (AF_INET6) socket too */
  family: 4 | 6;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  /** the VIP the client dialled, for service traffic */
  vip?: { address: string; port: number };
  serviceId: number;
  backendId: number;
  /** CLOCK_MONOTONIC ns */
  startNs: number;
  durationNs: number;
  bytesSent: number;
  bytesReceived: number;
  /** SYN sent -> established, client side; 0 otherwise */
  connectUs: number;
  srttUs: { last: number; min: number; max: number };
  retransmits: number;
}

/** A connection as views, spans and the API show it (totals so far). */
export type Connection =
  | (RecordBase & { kind: 'close'; closeCause: Exclude<CloseCause, 'none'>; error: number })
  | (RecordBase & { kind: 'interim' })
  | (RecordBase & { kind: 'connect_failed'; error: number });

/** What a record adds to counters: the kernel keeps each connection's last reported totals. */
export interface RecordCounts {
  /** The connection's first record: no earlier one was written. */
  first: boolean;
  /** Since the connection's previous record (all of it, for the first). */
  newBytesSent: number;
  newBytesReceived: number;
  newRetransmits: number;
}

/**
 * The ids of the two cgroups above the socket's (0 or absent: none, or a
 * record of release 0.2): they name the workload of a container cgroup gone
 * before the agent learnt its id. Attribution only: not part of a connection
 * as shown. decodeRecord always sets both.
 */
export interface RecordAncestry {
  cgroupParentId?: number;
  cgroupGrandparentId?: number;
}

export type ConnectionRecord = Connection & RecordCounts & RecordAncestry;

/** Whether a record counts its connection as opened: the first one, unless the connect failed. */
export function opens(rec: ConnectionRecord): boolean {
  return rec.first && rec.kind !== 'connect_failed';
}

export class RecordDecodeError extends Error {
  override readonly name = 'RecordDecodeError';
  readonly code = 'EBADRECORD';
}

const AF_INET6 = 10;
const view = MeshConnEvent.view();
const O = {
  saddr: MeshConnEvent.field('saddr').offset,
  daddr: MeshConnEvent.field('daddr').offset,
  vip: MeshConnEvent.field('vip').offset,
};

/**
 * Address text, cached: a node sees few distinct addresses, and formatting
 * one costs more than everything else in a record together.
 */
const v4Text = new Map<number, string>();
const v6Text = new Map<string, string>();

let lastBuf: Buffer | undefined;
let dv: DataView | undefined;

function addrAt(b: Buffer, off: number): string {
  // Records come from one ring buffer: one DataView serves them all, and its
  // reads inline where Buffer.readUInt32LE is a call with its own checks.
  if (b !== lastBuf) {
    lastBuf = b;
    dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  const d = dv!;
  // IPv4-mapped (::ffff:a.b.c.d) is the common case: key on the last word.
  if (d.getUint32(off, true) === 0 && d.getUint32(off + 4, true) === 0 && d.getUint32(off + 8, true) === 0xffff0000) {
    const w = d.getUint32(off + 12, true);
    let t = v4Text.get(w);
    if (t === undefined) {
      t = `${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
      if (v4Text.size > 65536) v4Text.clear();
      v4Text.set(w, t);
    }
    return t;
  }
  const key = b.toString('latin1', off, off + 16);
  let t = v6Text.get(key);
  if (t === undefined) {
    t = formatAddr(Buffer.from(b.subarray(off, off + 16)));
    if (v6Text.size > 65536) v6Text.clear();
    v6Text.set(key, t);
  }
  return t;
}

/**
 * A record of release 0.1's layout (left in the ring by its programs until
 * an upgrade swapped them out), rewritten in the current layout: its fields
 * by name, counted as that release's agent counted it - everything in it new.
 * Copied rather than decoded by a second view, so the hot path stays
 * monomorphic.
 */
const v1Scratch = Buffer.alloc(MeshConnEvent.size);
const V1_COPIES = MeshConnEventV1.fields.filter((f) => !f.name.startsWith('_pad'))
  .map((f) => [f.offset, MeshConnEvent.field(f.name as Parameters<typeof MeshConnEvent.field>[0]).offset, f.size] as const);
const FLAGS_OFFSET = MeshConnEvent.field('flags').offset;

function fromV1(buf: Buffer, off: number): Buffer {
  v1Scratch.fill(0);
  for (const [from, to, size] of V1_COPIES) buf.copy(v1Scratch, to, off + from, off + from + size);
  // 0.1's records carry totals and no prior ones (its agent kept those): the first of a
  // connection met here counts it, a later one (an interim, then its close) only what is new.
  const e = view.at(v1Scratch, 0);
  const seen = v1Totals.get(e.cookie);
  if (seen) {
    v1Scratch.writeBigUInt64LE(BigInt(seen.sent), PRIOR.sent);
    v1Scratch.writeBigUInt64LE(BigInt(seen.received), PRIOR.received);
    v1Scratch.writeUInt32LE(seen.retrans, PRIOR.retrans);
  } else {
    v1Scratch[FLAGS_OFFSET] = MESH_REC_FIRST;
    if (v1Totals.size >= 65_536) v1Totals.clear(); // only right after an upgrade from 0.1: never many
  }
  v1Totals.set(e.cookie, { sent: e.bytes_sent, received: e.bytes_received, retrans: e.retransmits });
  return v1Scratch;
}

/** Totals of the last 0.1 record of each connection met (by cookie). */
const v1Totals = new Map<bigint, { sent: number; received: number; retrans: number }>();
const PRIOR = {
  sent: MeshConnEvent.field('prior_bytes_sent').offset,
  received: MeshConnEvent.field('prior_bytes_received').offset,
  retrans: MeshConnEvent.field('prior_retransmits').offset,
};

/** A shorter record of release 0.2 on (a prefix of ours: fields are only appended), the rest zero. */
const prefixScratch = Buffer.alloc(MeshConnEvent.size);

function fromPrefix(buf: Buffer, off: number, len: number): Buffer {
  buf.copy(prefixScratch, 0, off, off + len);
  prefixScratch.fill(0, len);
  return prefixScratch;
}

/**
 * Decodes one record; a malformed one (wrong size, unknown kind) throws
 * RecordDecodeError. Records of other releases meet this agent in the pinned
 * ring after an upgrade or a rollback. From 0.2 on, fields are only appended
 * (bpf/mesh.h): a shorter record is the first part of ours (the fields it
 * lacks read as 0), and a longer one, a newer release's, starts with ours.
 */
export function decodeRecord(buf: Buffer, off: number, len: number): ConnectionRecord {
  if (len !== MeshConnEvent.size) {
    if (len === MeshConnEventV1.size) return decodeRecord(fromV1(buf, off), 0, MeshConnEvent.size);
    if (len < MESH_CONN_EVENT_V2_SIZE || len % 8 !== 0) {
      throw new RecordDecodeError(`record of ${len} bytes, expected ${MeshConnEvent.size} (or ${MeshConnEventV1.size} from release 0.1, ` +
        `${MESH_CONN_EVENT_V2_SIZE} or more from a later one)`);
    }
    if (len < MeshConnEvent.size) return decodeRecord(fromPrefix(buf, off, len), 0, MeshConnEvent.size);
  }
  const e = view.at(buf, off);
  const kind = e.kind;
  const svc = e.svc_id;
  const sent = e.bytes_sent;
  const received = e.bytes_received;
  const retrans = e.retransmits;
  const local = addrAt(buf, off + O.saddr);
  const base: RecordBase & RecordCounts & RecordAncestry = {
    cookie: e.cookie,
    cgroupId: e.cgroup_id,
    cgroupParentId: e.cgroup_parent_id,
    cgroupGrandparentId: e.cgroup_grandparent_id,
    side: e.client ? 'client' : 'server',
    // What is on the wire, not the socket's family: a dual-stack socket
    // ([::] listeners: Go, Node, Java) carries IPv4 as ::ffff:a.b.c.d, which
    // reads as a.b.c.d - and must key and format as IPv4 too.
    family: e.family === AF_INET6 && local.includes(':') ? 6 : 4,
    local: { address: local, port: e.sport },
    remote: { address: addrAt(buf, off + O.daddr), port: e.dport },
    serviceId: svc,
    backendId: e.backend_id,
    startNs: e.start_ns,
    durationNs: e.duration_ns,
    bytesSent: sent,
    bytesReceived: received,
    connectUs: e.connect_us,
    srttUs: { last: e.srtt_last_us, min: e.srtt_min_us, max: e.srtt_max_us },
    retransmits: retrans,
    first: (e.flags & MESH_REC_FIRST) !== 0,
    newBytesSent: sent - e.prior_bytes_sent,
    newBytesReceived: received - e.prior_bytes_received,
    newRetransmits: retrans - e.prior_retransmits,
  };
  if (svc) base.vip = { address: addrAt(buf, off + O.vip), port: e.vport };
  switch (kind) {
    case MeshEventKind.CLOSE: {
      const cause = MESH_CLOSE_CAUSES[e.close_cause];
      if (!cause || cause === 'none') throw new RecordDecodeError(`close record with cause ${e.close_cause}`);
      const r = base as RecordBase & RecordCounts & RecordAncestry & { kind: 'close'; closeCause: typeof cause; error: number };
      r.kind = 'close';
      r.closeCause = cause;
      r.error = e.error;
      return r;
    }
    case MeshEventKind.INTERIM: {
      const r = base as RecordBase & RecordCounts & RecordAncestry & { kind: 'interim' };
      r.kind = 'interim';
      return r;
    }
    case MeshEventKind.CONNECT_FAILED: {
      const r = base as RecordBase & RecordCounts & RecordAncestry & { kind: 'connect_failed'; error: number };
      r.kind = 'connect_failed';
      r.error = e.error;
      return r;
    }
    default:
      throw new RecordDecodeError(`unknown record kind ${kind}`);
  }
}
