/**
 * A connection record as the agent uses it, decoded once from the kernel's
 * mesh_conn_event (src/bpf/layouts/mesh.ts). Kinds are a discriminated union.
 */
import { MeshConnEvent, MESH_CLOSE_CAUSES, CloseCause, MeshEventKind } from '../bpf/layouts/mesh';
import { addrFromWords, formatAddr } from '../dataplane/addr';

interface RecordBase {
  cookie: bigint;
  /** cgroup v2 id of the socket: the workload */
  cgroupId: number;
  side: 'client' | 'server';
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

export type ConnectionRecord =
  | (RecordBase & { kind: 'close'; closeCause: Exclude<CloseCause, 'none'>; error: number })
  | (RecordBase & { kind: 'interim' })
  | (RecordBase & { kind: 'connect_failed'; error: number });

export class RecordDecodeError extends Error {
  override readonly name = 'RecordDecodeError';
  readonly code = 'EBADRECORD';
}

const AF_INET6 = 10;

/** Decodes one record; a malformed one (wrong size, unknown kind) throws RecordDecodeError. */
export function decodeRecord(buf: Buffer, off: number, len: number): ConnectionRecord {
  if (len !== MeshConnEvent.size) throw new RecordDecodeError(`record of ${len} bytes, expected ${MeshConnEvent.size}`);
  const e = MeshConnEvent.decode(buf, off);
  const base: RecordBase = {
    cookie: e.cookie,
    cgroupId: e.cgroup_id,
    side: e.client ? 'client' : 'server',
    family: e.family === AF_INET6 ? 6 : 4,
    local: { address: formatAddr(addrFromWords(e.saddr)), port: e.sport },
    remote: { address: formatAddr(addrFromWords(e.daddr)), port: e.dport },
    serviceId: e.svc_id,
    backendId: e.backend_id,
    startNs: e.start_ns,
    durationNs: e.duration_ns,
    bytesSent: e.bytes_sent,
    bytesReceived: e.bytes_received,
    connectUs: e.connect_us,
    srttUs: { last: e.srtt_last_us, min: e.srtt_min_us, max: e.srtt_max_us },
    retransmits: e.retransmits,
  };
  if (e.svc_id) base.vip = { address: formatAddr(addrFromWords(e.vip)), port: e.vport };
  switch (e.kind) {
    case MeshEventKind.CLOSE: {
      const cause = MESH_CLOSE_CAUSES[e.close_cause];
      if (!cause || cause === 'none') throw new RecordDecodeError(`close record with cause ${e.close_cause}`);
      return { ...base, kind: 'close', closeCause: cause, error: e.error };
    }
    case MeshEventKind.INTERIM:
      return { ...base, kind: 'interim' };
    case MeshEventKind.CONNECT_FAILED:
      return { ...base, kind: 'connect_failed', error: e.error };
    default:
      throw new RecordDecodeError(`unknown record kind ${e.kind}`);
  }
}
