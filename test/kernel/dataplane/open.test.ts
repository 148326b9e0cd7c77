/**
 * Dataplane.open refuses what it must not do before it touches the kernel:
 * the cgroup v2 root (every process of the machine) and a cgroup that does
 * not exist, each with its code.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Dataplane } from '../../../src/dataplane/dataplane';
import { DataplaneError } from '../../../src/dataplane/errors';
import { cgroup2Root } from '../../../src/platform/cgroup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';

test('open refuses the cgroup v2 root and a missing cgroup, with codes, and pins nothing', async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const root = cgroup2Root()!;
  const bpffsDir = `/sys/fs/bpf/sockmesh-test-${process.pid}-open`;
  const refused = (cgroupPath: string, code: string, message: RegExp): void => {
    assert.throws(() => Dataplane.open({ bpffsDir, cgroupPath, reportIntervalMs: 1000 }),
      (err: unknown) => err instanceof DataplaneError && err.code === code && message.test(err.message));
  };
  refused(root, 'EROOTCGROUP', /refusing to attach to the cgroup v2 root/);
  refused(`${root}/`, 'EROOTCGROUP', /refusing to attach to the cgroup v2 root/);
  refused(path.join(root, `sockmesh-test-${process.pid}-absent`), 'ENOCGROUP', /does not exist: create it or fix agent\.cgroupRoot/);
  assert.equal(fs.existsSync(bpffsDir), false, 'nothing pinned');
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
