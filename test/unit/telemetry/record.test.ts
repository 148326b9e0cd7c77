import test from 'node:test';
import assert from 'node:assert/strict';
import { MeshConnEvent, MeshConnEventV1, MESH_CONN_EVENT_V2_SIZE, MESH_REC_FIRST } from '../../../src/bpf/layouts/mesh';
import { decodeRecord, RecordDecodeError } from '../../../src/telemetry/record';

/** 10.0.0.5 as the kernel stores it: IPv4-mapped, network order. */
const V4 = [0, 0, 0xffff0000, 0x0500000a];
const FIELDS = {
  cookie: 99n, cgroup_id: 1234, start_ns: 5_000, duration_ns: 7_000, bytes_sent: 3_000, bytes_received: 9_000,
  saddr: V4, daddr: V4, vip: [0, 0, 0, 0], sport: 40_000, dport: 8080, vport: 0, family: 2,
  svc_id: 0, backend_id: 0, connect_us: 40, srtt_last_us: 30, srtt_min_us: 20, srtt_max_us: 50, retransmits: 4, error: 0,
  kind: 0, client: 1, close_cause: 1,
};

/** At an offset inside a larger buffer, as records sit in the ring. */
function inRing(record: Buffer): { buf: Buffer; off: number } {
  const buf = Buffer.alloc(record.length + 24, 0xee);
  record.copy(buf, 16);
  return { buf, off: 16 };
}

test('a record says what is new since the connection\'s previous one', () => {
  const rec = MeshConnEvent.encode({ ...FIELDS, prior_bytes_sent: 1_000, prior_bytes_received: 8_500, prior_retransmits: 1, flags: 0 });
  const { buf, off } = inRing(rec);
  const r = decodeRecord(buf, off, rec.length);
  assert.equal(r.kind, 'close');
  assert.deepEqual([r.bytesSent, r.bytesReceived, r.retransmits], [3_000, 9_000, 4]);
  assert.deepEqual([r.first, r.newBytesSent, r.newBytesReceived, r.newRetransmits], [false, 2_000, 500, 3]);
  assert.equal(r.local.address, '10.0.0.5');
  const first = decodeRecord(MeshConnEvent.encode({ ...FIELDS, flags: MESH_REC_FIRST }), 0, MeshConnEvent.size);
  assert.deepEqual([first.first, first.newBytesSent], [true, 3_000]);
});

test('a record release 0.1 left in the ring decodes, counted as that release counted it', () => {
  const old = MeshConnEventV1.encode(FIELDS);
  assert.equal(old.length, 144);
  const { buf, off } = inRing(old);
  const r = decodeRecord(buf, off, old.length);
  const now = decodeRecord(MeshConnEvent.encode({ ...FIELDS, flags: MESH_REC_FIRST }), 0, MeshConnEvent.size);
  assert.deepEqual(r, now, 'the same record as the current layout would carry for a first report');
  // The next current-layout record decodes from the ring again, not from the scratch copy.
  const next = MeshConnEvent.encode({ ...FIELDS, cookie: 100n, saddr: [0, 0, 0xffff0000, 0x0600000a], flags: MESH_REC_FIRST });
  assert.equal(decodeRecord(next, 0, next.length).local.address, '10.0.0.6');
});

test('two records of one connection that release 0.1 left in the ring count it once, and each byte once', () => {
  const interim = MeshConnEventV1.encode({ ...FIELDS, cookie: 555n, kind: 1, close_cause: 0, bytes_sent: 1_000, bytes_received: 4_000, retransmits: 1 });
  const close = MeshConnEventV1.encode({ ...FIELDS, cookie: 555n, bytes_sent: 1_500, bytes_received: 9_000, retransmits: 3 });
  const a = decodeRecord(interim, 0, interim.length);
  const b = decodeRecord(close, 0, close.length);
  assert.deepEqual([a.first, a.newBytesSent, a.newBytesReceived, a.newRetransmits], [true, 1_000, 4_000, 1]);
  assert.deepEqual([b.first, b.newBytesSent, b.newBytesReceived, b.newRetransmits], [false, 500, 5_000, 2]);
});

test('a record of any other size is refused with the sizes it knows', () => {
  for (const n of [152, 8, 164, 180]) {
    assert.throws(() => decodeRecord(Buffer.alloc(n), 0, n), (err: unknown) =>
      err instanceof RecordDecodeError && new RegExp(`record of ${n} bytes, expected 176 \\(or 144 from release 0\\.1, 160 or more from a later one\\)`).test(err.message));
  }
});

test('a record names the two cgroups above its socket\'s; release 0.2\'s shorter record reads with them 0', () => {
  const full = MeshConnEvent.encode({ ...FIELDS, flags: MESH_REC_FIRST, cgroup_parent_id: 1200, cgroup_grandparent_id: 1100 });
  const r = decodeRecord(full, 0, full.length);
  assert.deepEqual([r.cgroupId, r.cgroupParentId, r.cgroupGrandparentId], [1234, 1200, 1100]);
  // What the 0.2 programs, still attached during an upgrade, leave in the ring: our record's first 160 bytes.
  const { buf, off } = inRing(full.subarray(0, MESH_CONN_EVENT_V2_SIZE));
  const old = decodeRecord(buf, off, MESH_CONN_EVENT_V2_SIZE);
  assert.deepEqual(old, { ...r, cgroupParentId: 0, cgroupGrandparentId: 0 });
  // The next full record decodes from the ring again, not from the scratch copy.
  const next = MeshConnEvent.encode({ ...FIELDS, saddr: [0, 0, 0xffff0000, 0x0600000a], cgroup_parent_id: 7 });
  assert.deepEqual([decodeRecord(next, 0, next.length).local.address, decodeRecord(next, 0, next.length).cgroupParentId], ['10.0.0.6', 7]);
});

test('a longer record (a newer release\'s programs, after a rollback) is read by the part this release knows', () => {
  const ours = MeshConnEvent.encode({ ...FIELDS, flags: MESH_REC_FIRST });
  const newer = Buffer.concat([Buffer.alloc(8, 0xee), ours, Buffer.alloc(16, 0xab)]); // fields appended after ours
  assert.deepEqual(decodeRecord(newer, 8, MeshConnEvent.size + 16), decodeRecord(ours, 0, MeshConnEvent.size));
});

test('the record layout is the one this release writes (a change needs the previous one readable)', () => {
  // Records outlive the agent in the pinned ring: an upgraded agent must read
  // the previous release's, and a rolled-back one the next release's. From 0.2
  // on fields are only appended (both directions read by prefix); anything
  // else means keeping the old layout in bpf/mesh_legacy.h and reading it in
  // decodeRecord. Then update this size.
  assert.equal(MeshConnEvent.size, 176, 'struct mesh_conn_event changed: keep the previous layout readable first');
  assert.notEqual(MeshConnEventV1.size, MeshConnEvent.size, 'sizes tell the layouts apart');
});

test('IPv4 on a dual-stack socket ([::] listeners) is IPv4; an IPv6 address is IPv6', () => {
  const mapped = MeshConnEvent.encode({ ...FIELDS, family: 10, flags: MESH_REC_FIRST });
  const r = decodeRecord(mapped, 0, mapped.length);
  assert.deepEqual([r.family, r.local.address, r.remote.address], [4, '10.0.0.5', '10.0.0.5']);
  const V6 = [0x000080fd, 0, 0, 0x01000000]; // fd80::1
  const v6 = MeshConnEvent.encode({ ...FIELDS, family: 10, saddr: V6, daddr: V6, flags: MESH_REC_FIRST });
  const r6 = decodeRecord(v6, 0, v6.length);
  assert.deepEqual([r6.family, r6.local.address], [6, 'fd80::1']);
});
