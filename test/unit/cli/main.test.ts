import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../../src/bpf/native';

test('a CLI whose output pipe closed (| head) stops as a pipe writer does, without an EPIPE stack trace', () => {
  const cli = path.join(repoRoot, 'dist/src/cli/main.js');
  const mesh = path.join(repoRoot, 'examples/mesh.yaml');
  // `true` exits before node has started: the CLI's first write meets a closed pipe.
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${cli}" validate "${mesh}" | true; echo "status=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
  assert.equal(r.stderr, '', 'nothing on stderr');
  assert.equal(r.stdout.trim(), 'status=143', 'ended by its SIGTERM, as the agent and the demo would be (they clean up on it)');
});
