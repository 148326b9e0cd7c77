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
