/** `sockmesh edges` arguments, checked before any agent is asked. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../../src/bpf/native';

const cli = path.join(repoRoot, 'dist/src/cli/main.js');

test('--watch outside 0.5 s .. 1 day is refused with its range: faster floods the agent, slower overflows a timer', () => {
  for (const v of ['0.1', '0', '3000000', '1e12', 'soon']) {
    const r = spawnSync(process.execPath, [cli, 'edges', '--watch', v, '--socket', '/nonexistent/agent.sock'], { encoding: 'utf8' });
    assert.equal(r.status, 1, v);
    assert.equal(r.stderr, `sockmesh: --watch takes seconds between 0.5 and 86400, got "${v}"\n`, v);
  }
});
