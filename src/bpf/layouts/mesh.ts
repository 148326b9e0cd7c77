/** Mirror of bpf/mesh.h. Checked against BTF by test/kernel/bpf/layout-btf.test.ts. */
import { struct } from '../layout';

export const MeshSvcKey = struct('mesh_svc_key', {
  addr: ['u32', 4],
  port: 'u16',
  proto: 'u8',
  _pad0: 'u8',
});

export const MeshSvc = struct('mesh_svc', {
  id: 'u32',
  gen: 'u32',
  slots: 'u32',
  flags: 'u32',
});

export const MeshSlotKey = struct('mesh_slot_key', {
  svc: 'u32',
  gen: 'u32',
  slot: 'u32',
});

export const MeshBackend = struct('mesh_backend', {
  addr: ['u32', 4],
  port: 'u16',
  family: 'u16',
  id: 'u32',
});

export const MeshVerdictKey = struct('mesh_verdict_key', {
  svc: 'u32',
  verdict: 'u32',
});

export const MeshConnEvent = struct('mesh_conn_event', {
  cookie: 'u64',
  cgroup_id: 'u64n',
  start_ns: 'u64n',
  duration_ns: 'u64n',
  bytes_sent: 'u64n',
  bytes_received: 'u64n',
  prior_bytes_sent: 'u64n',
  prior_bytes_received: 'u64n',
  saddr: ['u32', 4],
  daddr: ['u32', 4],
  vip: ['u32', 4],
  sport: 'u16',
  dport: 'u16',
  vport: 'u16',
  family: 'u16',
  svc_id: 'u32',
  backend_id: 'u32',
  connect_us: 'u32',
  srtt_last_us: 'u32',
  srtt_min_us: 'u32',
  srtt_max_us: 'u32',
  retransmits: 'u32',
  error: 'i32',
  kind: 'u8',
  client: 'u8',
  close_cause: 'u8',
  flags: 'u8',
  prior_retransmits: 'u32',
  cgroup_parent_id: 'u64n',
  cgroup_grandparent_id: 'u64n',
});

/** Size of the record of release 0.2, the first whose later releases only append fields: a prefix of MeshConnEvent. */
export const MESH_CONN_EVENT_V2_SIZE = 160;

/** The record release 0.1 wrote (bpf/mesh_legacy.h): an upgraded agent still reads those left in the ring. */
export const MeshConnEventV1 = struct('mesh_conn_event_v1', {
  cookie: 'u64',
  cgroup_id: 'u64n',
  start_ns: 'u64n',
  duration_ns: 'u64n',
  bytes_sent: 'u64n',
  bytes_received: 'u64n',
  saddr: ['u32', 4],
  daddr: ['u32', 4],
  vip: ['u32', 4],
  sport: 'u16',
  dport: 'u16',
  vport: 'u16',
  family: 'u16',
  svc_id: 'u32',
  backend_id: 'u32',
  connect_us: 'u32',
  srtt_last_us: 'u32',
  srtt_min_us: 'u32',
  srtt_max_us: 'u32',
  retransmits: 'u32',
  error: 'i32',
  kind: 'u8',
  client: 'u8',
  close_cause: 'u8',
  _pad0: 'u8',
  _pad1: 'u32',
});

/** mesh_conn_event.flags */
export const MESH_REC_FIRST = 1;

export const MESH_MAX_SLOTS = 4096;

export const MeshVerdict = { REWRITTEN: 0, NO_BACKEND: 1, STALE: 2, FAMILY: 3 } as const;
export const MESH_VERDICT_NAMES = ['rewritten', 'no_backend', 'stale', 'family_mismatch'] as const;

export const MeshEventKind = { CLOSE: 0, INTERIM: 1, CONNECT_FAILED: 2 } as const;

export const MESH_CLOSE_CAUSES = ['none', 'fin', 'rst_sent', 'rst_received', 'timeout', 'error'] as const;
export type CloseCause = (typeof MESH_CLOSE_CAUSES)[number];

export const MeshCounter = { EVENTS: 0, EVENTS_DROPPED: 1, STORAGE_FAILED: 2, UDP_REV_FAILED: 3, OPEN: 4, REPORTS_DEFERRED: 5 } as const;
