/**
 * `sockmesh agent` refusals that happen before it touches the kernel: they
 * need no root, and must name what to fix.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../../src/bpf/native';

const cli = path.join(repoRoot, 'dist/src/cli/main.js');
const agent = (...args: string[]) => spawnSync(process.execPath, [cli, 'agent', ...args], { encoding: 'utf8', timeout: 20_000 });

test('a mesh file whose agent: section cannot be read starts nothing and uninstalls nothing: defaults would name another instance', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-agent-cli-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(file, 'apiVersion: sockmesh.io/v1alpha1\nkind: Mesh\nagent:\n  instance: staging\n  logLevel: LOUD\nservices: []\n');
  for (const extra of [[], ['--uninstall']]) {
    const r = agent('--config', file, ...extra);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /cannot tell which instance, cgroup root and pins this agent is for/);
    assert.match(r.stderr, /Nothing was started or removed/);
    assert.match(r.stderr, new RegExp(`${file}:5:13 agent.logLevel: `), 'the issue, where it is');
  }
  const asDir = agent('--config', dir);
  assert.equal(asDir.status, 2);
  assert.match(asDir.stderr, /mesh file .* is a directory: pass --config with the path to your mesh YAML/);
});
