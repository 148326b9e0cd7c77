import test from 'node:test';
import assert from 'node:assert/strict';
import { describeChanges } from '../../../src/agent/agent';

test('status lists what an adopting start changed, one line each; nothing for an install or a plain restart', () => {
  assert.deepEqual(describeChanges({ kind: 'installed' }, 'sockmesh'), []);
  assert.deepEqual(describeChanges({ kind: 'adopted', upgradedPrograms: 9, replacedMaps: [], removed: [], attached: [], moved: [] }, 'sockmesh'), []);
  assert.deepEqual(describeChanges({
    kind: 'adopted',
    upgradedPrograms: 9,
    replacedMaps: [
      { name: 'slots', action: 'copy', reason: 'definition changed: maxEntries 4096 -> 262144', copy: { copied: 12, dropped: 0 } },
      { name: 'counters', action: 'copy', reason: 'definition changed: maxEntries 8 -> 6', copy: { copied: 6, dropped: 2 } },
      { name: 'udp_rev', action: 'fresh', reason: 'not pinned (new in this version)' },
    ],
    removed: ['maps/legacy'],
    attached: ['getpeername6'],
    moved: ['connect4'],
  }, 'kubepods'), [
    'map slots: copy (definition changed: maxEntries 4096 -> 262144): 12 entries carried over',
    'map counters: copy (definition changed: maxEntries 8 -> 6): 6 entries carried over, 2 did not fit',
    'map udp_rev: fresh (not pinned (new in this version))',
    'hook getpeername6: attached (not pinned before)',
    'hook connect4: moved to cgroup kubepods',
    'maps/legacy: removed (not part of this version)',
  ]);
});
