/**
 * Every TypeScript mirror of a shared struct against the BTF of the object
 * that carries it: same members in the same order at the same offsets with
 * the same sizes, and the same total size. A change on either side alone
 * fails here instead of skewing decoded records.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { LAYOUTS } from '../../../src/bpf/layouts';
import { BPF_OUTPUT_DIR } from '../../../src/bpf/objects';
import { MIGRATIONS } from '../../../src/dataplane/upgrade';
import { readBtfStruct } from '../../helpers/btf';

function unavailable(): string | undefined {
  try {
    execFileSync('bpftool', ['version'], { stdio: 'ignore' });
  } catch {
    return 'bpftool not installed';
  }
  if (!fs.existsSync(`${BPF_OUTPUT_DIR}/selftest.bpf.o`)) return 'BPF objects not built (npm run build:bpf)';
  return undefined;
}

for (const { object, layouts } of LAYOUTS) {
  for (const layout of layouts) {
    test(`${layout.name} in TypeScript matches the BTF of ${object}.bpf.o`, (t) => {
      const why = unavailable();
      if (why) {
        if (process.env.CI === 'true') throw new Error(why);
        t.skip(why);
        return;
      }
      const btf = readBtfStruct(`${BPF_OUTPUT_DIR}/${object}.bpf.o`, layout.name);
      assert.ok(btf, `struct ${layout.name} is not in ${object}.bpf.o's BTF (EXPORT_STRUCT it)`);
      assert.deepEqual(
        layout.fields.map((f) => ({ name: f.name, offset: f.offset, size: f.size, count: f.count })),
        btf.members.map((m) => ({ name: m.name, offset: m.offset, size: m.size, count: m.count })),
      );
      assert.equal(layout.size, btf.size, 'sizeof');
    });
  }
}

/*
 * The per-socket state outlives the agent: an upgrade that finds another
 * layout pinned converts it only if a migration exists. This snapshot makes
 * a change to struct mesh_sock fail here until that migration is written.
 */
const MESH_SOCK = 'vip@0 vport@16 _pad0@18 svc_id@20 backend_id@24 flags@28 srtt_min_us@32 srtt_max_us@36 connect_us@40 _pad1@44 ' +
  'start_ns@48 last_report_ns@56 reported_sent@64 reported_received@72 reported_retrans@80 reports@84 lock@88 _pad2@92 (96 bytes)';

test('struct mesh_sock is the layout upgrades migrate to (a change needs a migration)', (t) => {
  const why = unavailable();
  if (why) {
    if (process.env.CI === 'true') throw new Error(why);
    t.skip(why);
    return;
  }
  const btf = readBtfStruct(`${BPF_OUTPUT_DIR}/mesh.bpf.o`, 'mesh_sock')!;
  const now = `${btf.members.map((m) => `${m.name}@${m.offset}`).join(' ')} (${btf.size} bytes)`;
  assert.equal(now, MESH_SOCK, 'struct mesh_sock changed: keep the previous layout in bpf/mesh_legacy.h, convert it with a program in ' +
    'bpf/mesh_migrate.bpf.c named in MIGRATIONS (src/dataplane/upgrade.ts), test it like test/kernel/dataplane/migrate.test.ts, then update this snapshot');
  assert.equal(MIGRATIONS.sock_info?.[btf.size], undefined, 'no migration claims the current size');
});
