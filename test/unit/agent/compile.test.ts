import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compile, underCgroup } from '../../../src/agent/compile';
import { parseMesh } from '../../../src/config/load';

test('underCgroup: the root itself and paths below it, not siblings sharing a prefix', () => {
  assert.equal(underCgroup('sockmesh', 'sockmesh'), true);
  assert.equal(underCgroup('sockmesh/pods/a', 'sockmesh'), true);
  assert.equal(underCgroup('sockmesh-other/a', 'sockmesh'), false);
  assert.equal(underCgroup('kubepods/a', 'sockmesh'), false);
  assert.equal(underCgroup('sock', 'sockmesh'), false);
});

test('compile names the workloads outside the cgroup root and those whose cgroup is missing', () => {
  // A stand-in cgroup mount: compile only stats directories for their ids.
  const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-compile-'));
  try {
    fs.mkdirSync(path.join(mount, 'mesh/pods/a'), { recursive: true });
    fs.mkdirSync(path.join(mount, 'elsewhere/b'), { recursive: true });
    const r = parseMesh([
      'apiVersion: sockmesh.io/v1alpha1',
      'kind: Mesh',
      'network: { vipCIDRs: [127.77.0.0/16] }',
      'workloads:',
      '  - { name: a, cgroup: mesh/pods/a }',
      '  - { name: b, cgroup: elsewhere/b }',
      '  - { name: c, cgroup: mesh/pods/c }',
      '',
    ].join('\n'), 'mesh.yaml');
    if (!r.ok) assert.fail(JSON.stringify(r.issues));
    const c = compile(r.config, mount, 'mesh');
    assert.deepEqual(c.outsideRoot, ['elsewhere/b']);
    assert.deepEqual(c.missingCgroups, ['mesh/pods/c']);
    const idA = Number(fs.statSync(path.join(mount, 'mesh/pods/a'), { bigint: true }).ino);
    assert.equal(c.directory.workload(idA), 'default/a');
  } finally {
    fs.rmSync(mount, { recursive: true, force: true });
  }
});
