import test from 'node:test';
import assert from 'node:assert/strict';
import { formatSettingsIssue, SettingsError, type SettingsIssue } from '../../../src/config/errors';
import { parseMesh } from '../../../src/config/load';
import type { AgentSettings } from '../../../src/config/model';
import { defaultSettings, mergeSettings, SETTINGS, type FileLayer, type SettingsInput } from '../../../src/config/settings';

function settings(input: SettingsInput): AgentSettings {
  const r = mergeSettings(input);
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatSettingsIssue).join('\n'));
  return r.settings;
}

function refused(input: SettingsInput): SettingsIssue[] {
  const r = mergeSettings(input);
  assert.equal(r.ok, false, 'expected the settings to be refused');
  return r.ok ? [] : r.issues;
}

/** A file layer with made-up but checkable positions: line 40 + path length, column 3. */
function fileLayer(values: unknown): FileLayer {
  return { values, source: (p) => ({ file: 'mesh.yaml', line: 40 + p.length, column: 3 }) };
}

test('with nothing set, the defaults', () => {
  assert.deepEqual(settings({ flags: {}, env: {} }), {
    instance: 'default',
    bpffsDir: '/sys/fs/bpf/sockmesh/default',
    cgroupRoot: 'sockmesh',
    metricsAddress: { host: '127.0.0.1', port: 9464 },
    apiSocket: '/run/sockmesh/default.sock',
    reportIntervalMs: 10_000,
    edgeTtlMs: 600_000,
    rttSamples: 'all',
    ringBytes: 4 * 1024 * 1024,
    bpfStats: 'off',
    logLevel: 'info',
  });
  assert.deepEqual(settings({ flags: {}, env: {} }), defaultSettings());
});

test('flag names and variable names follow the setting names', () => {
  assert.deepEqual([SETTINGS.reportIntervalMs.name, SETTINGS.reportIntervalMs.flag, SETTINGS.reportIntervalMs.env],
    ['reportInterval', '--report-interval', 'SOCKMESH_REPORT_INTERVAL']);
  assert.deepEqual([SETTINGS.bpffsDir.flag, SETTINGS.bpffsDir.env], ['--bpffs-dir', 'SOCKMESH_BPFFS_DIR']);
  assert.deepEqual([SETTINGS.metricsAddress.flag, SETTINGS.metricsAddress.env], ['--metrics-address', 'SOCKMESH_METRICS_ADDRESS']);
});

test('precedence: flags > env > file > defaults, setting by setting', () => {
  const s = settings({
    file: fileLayer({ logLevel: 'warn', reportInterval: 30_000, metricsAddress: '127.0.0.1:1001', cgroupRoot: 'from-file' }),
    env: { SOCKMESH_LOG_LEVEL: 'error', SOCKMESH_METRICS_ADDRESS: '127.0.0.1:1002' },
    flags: { logLevel: 'debug' },
  });
  assert.equal(s.logLevel, 'debug', 'flag beats env and file');
  assert.deepEqual(s.metricsAddress, { host: '127.0.0.1', port: 1002 }, 'env beats file');
  assert.equal(s.reportIntervalMs, 30_000, 'file beats default');
  assert.equal(s.cgroupRoot, 'from-file');
  assert.equal(s.apiSocket, '/run/sockmesh/default.sock', 'default when no layer sets it');
  assert.equal(s.otlpEndpoint, undefined);
});

test('the instance names the default paths, from whichever layer sets it; explicit paths stay', () => {
  const fromEnv = settings({ flags: {}, env: { SOCKMESH_INSTANCE: 'node-b' } });
  assert.equal(fromEnv.bpffsDir, '/sys/fs/bpf/sockmesh/node-b');
  assert.equal(fromEnv.apiSocket, '/run/sockmesh/node-b.sock');
  const explicit = settings({ flags: { instance: 'c' }, env: {}, file: fileLayer({ bpffsDir: '/sys/fs/bpf/elsewhere' }) });
  assert.equal(explicit.bpffsDir, '/sys/fs/bpf/elsewhere');
  assert.equal(explicit.apiSocket, '/run/sockmesh/c.sock');
});

test('values in every accepted form', () => {
  const s = settings({
    flags: { metricsAddress: '[::1]:9000', otlpEndpoint: 'http://127.0.0.1:4317/' },
    env: { SOCKMESH_REPORT_INTERVAL: '1.5s', SOCKMESH_CGROUP_ROOT: 'kubepods/burstable' },
  });
  assert.deepEqual(s.metricsAddress, { host: '::1', port: 9000 });
  assert.equal(s.otlpEndpoint, 'http://127.0.0.1:4317');
  assert.equal(s.reportIntervalMs, 1500);
  assert.equal(s.cgroupRoot, 'kubepods/burstable');
  for (const [text, ms] of [['250ms', 250], ['100', 100], ['2m', 120_000], ['1h', 3_600_000]] as const) {
    assert.equal(settings({ flags: { reportInterval: text }, env: {} }).reportIntervalMs, ms, text);
  }
  assert.deepEqual(settings({ flags: { metricsAddress: 'Localhost:80' }, env: {} }).metricsAddress, { host: 'localhost', port: 80 });
});

test('a bad environment variable is reported by name', () => {
  const issues = refused({ flags: {}, env: { SOCKMESH_METRICS_ADDRESS: 'localhost' } });
  assert.equal(issues.length, 1);
  const [issue] = issues;
  assert.ok(issue && issue.origin === 'env');
  assert.equal(issue.name, 'SOCKMESH_METRICS_ADDRESS');
  assert.equal(formatSettingsIssue(issue), 'env SOCKMESH_METRICS_ADDRESS: not host:port (e.g. 127.0.0.1:9464 or [::1]:9464), got "localhost"');
});

test('a bad flag is reported by its --name', () => {
  const issues = refused({ flags: { reportInterval: '50ms' }, env: {} });
  assert.deepEqual(issues.map(formatSettingsIssue), [
    'flag --report-interval: must be a duration in 100ms..1h, e.g. 10s or 10000 (milliseconds), got "50ms"',
  ]);
});

test('a bad file value is reported at its position in the file', () => {
  const issues = refused({ flags: {}, env: {}, file: fileLayer({ reportInterval: '2h', colour: 'blue' }) });
  assert.deepEqual(issues.map(formatSettingsIssue), [
    'mesh.yaml:42:3 agent.reportInterval: must be a duration in 100ms..1h, e.g. 10s or 10000 (milliseconds), got "2h"',
    'mesh.yaml:42:3 agent.colour: unknown setting (known: instance, bpffsDir, cgroupRoot, metricsAddress, apiSocket, otlpEndpoint, reportInterval, edgeTtl, rttSamples, ringBytes, bpfStats, logLevel)',
  ]);
});

test('a file layer from a real mesh file keeps real positions', () => {
  const text = [
    'apiVersion: sockmesh.io/v1alpha1',
    'kind: Mesh',
    'network: { vipCIDRs: [127.77.0.0/16] }',
    'agent:',
    '  logLevel: warn',
    '  reportInterval: 5s',
    '',
  ].join('\n');
  const r = parseMesh(text, 'mesh.yaml');
  assert.ok(r.ok);
  assert.deepEqual(r.agentLayer.source(['agent', 'reportInterval']), { file: 'mesh.yaml', line: 6, column: 19 });
  const s = settings({ flags: {}, env: { SOCKMESH_LOG_LEVEL: 'debug' }, file: r.agentLayer });
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.reportIntervalMs, 5000);
});

test('every bad value in every layer is reported, even ones a higher layer overrides', () => {
  const issues = refused({
    file: fileLayer({ logLevel: 'loud', cgroupRoot: '/abs' }),
    env: { SOCKMESH_LOG_LEVEL: 'verbose', SOCKMESH_BPFFS_DIR: 'relative/dir', SOCKMESH_OTLP_ENDPOINT: 'grpc://collector:4317' },
    flags: { logLevel: 'info', instance: 'Node_A', apiSocket: `/run/${'x'.repeat(120)}.sock` },
  });
  assert.deepEqual(issues.map((i) => (i.origin === 'file' ? `file ${i.path}` : `${i.origin} ${i.name}`)), [
    'file agent.logLevel',
    'file agent.cgroupRoot',
    'env SOCKMESH_BPFFS_DIR',
    'env SOCKMESH_OTLP_ENDPOINT',
    'env SOCKMESH_LOG_LEVEL',
    'flag --instance',
    'flag --api-socket',
  ]);
  const err = new SettingsError(issues);
  assert.equal(err.code, 'ECONFIG');
  assert.equal(err.message.split('\n').length, issues.length);
  assert.match(err.message, /^flag --api-socket: a unix socket path is at most 107 bytes/m);
  assert.match(err.message, /^mesh\.yaml:42:3 agent\.cgroupRoot: must be relative to the cgroup v2 mount/m);
});

test('cgroupRoot is checked like a workload cgroup', () => {
  for (const bad of ['/sys/fs/cgroup/x', 'a/../b', 'a//b', 'a/', '']) {
    const issues = refused({ flags: { cgroupRoot: bad }, env: {} });
    assert.equal(issues.length, 1, bad);
    assert.ok(issues[0]?.origin === 'flag' && issues[0].name === '--cgroup-root');
  }
});

test('host:port and URL edge cases are refused', () => {
  assert.equal(settings({ flags: { metricsAddress: '127.0.0.1:0' }, env: {} }).metricsAddress.port, 0, 'port 0: the kernel picks');
  for (const bad of ['127.0.0.1', '127.0.0.1:65536', '::1:80', '[127.0.0.1]:80', '[::1]', 'a b:80']) {
    assert.equal(refused({ flags: { metricsAddress: bad }, env: {} }).length, 1, bad);
  }
  for (const bad of ['127.0.0.1:4317', 'http://u:p@collector:4317', 'http://collector:4317/v1/traces', 'ftp://collector']) {
    assert.equal(refused({ flags: { otlpEndpoint: bad }, env: {} }).length, 1, bad);
  }
});

test('empty variables, unrelated SOCKMESH_* variables and unrelated flags are ignored', () => {
  const s = settings({
    flags: { mesh: 'examples/mesh.yaml', logLevel: undefined },
    env: { SOCKMESH_LOG_LEVEL: '', SOCKMESH_LIBBPF_DEBUG: '1' },
  });
  assert.equal(s.logLevel, 'info');
});

test('an empty agent: section is no settings; a non-mapping one is an error', () => {
  assert.deepEqual(settings({ flags: {}, env: {}, file: fileLayer(null) }), defaultSettings());
  assert.deepEqual(refused({ flags: {}, env: {}, file: fileLayer(['logLevel: info']) }).map(formatSettingsIssue), [
    'mesh.yaml:41:3 agent: must be a mapping of agent settings, got a list',
  ]);
});

test('rttSamples: all or none, from any layer; anything else is refused with both choices named', () => {
  assert.equal(settings({ flags: {}, env: { SOCKMESH_RTT_SAMPLES: 'none' } }).rttSamples, 'none');
  assert.equal(settings({ flags: { rttSamples: 'all' }, env: { SOCKMESH_RTT_SAMPLES: 'none' } }).rttSamples, 'all');
  assert.equal(settings({ flags: {}, env: {}, file: fileLayer({ rttSamples: 'none' }) }).rttSamples, 'none');
  assert.deepEqual(refused({ flags: { rttSamples: 'some' }, env: {} }).map(formatSettingsIssue), [
    'flag --rtt-samples: must be all (every RTT sample: exact SRTT min/max) or none (no callback per ACK), got "some"',
  ]);
});

test('bpfStats: on or off, from any layer; anything else is refused with what on does', () => {
  assert.equal(settings({ flags: {}, env: { SOCKMESH_BPF_STATS: 'on' } }).bpfStats, 'on');
  assert.equal(settings({ flags: { bpfStats: 'off' }, env: { SOCKMESH_BPF_STATS: 'on' } }).bpfStats, 'off');
  assert.equal(settings({ flags: {}, env: {}, file: fileLayer({ bpfStats: 'on' }) }).bpfStats, 'on');
  assert.equal(settings({ flags: {}, env: {}, file: fileLayer({ bpfStats: true }) }).bpfStats, 'on', 'a YAML boolean');
  assert.deepEqual(refused({ flags: { bpfStats: 'true' }, env: {}, file: fileLayer({ bpfStats: 1 }) }).map(formatSettingsIssue), [
    "mesh.yaml:42:3 agent.bpfStats: must be on (count each mesh program's runs and run time for /metrics) or off, got 1",
    "flag --bpf-stats: must be on (count each mesh program's runs and run time for /metrics) or off, got \"true\"",
  ]);
});

test('ringBytes: a power of two from 64KiB to 1GiB, in bytes or with a binary unit, from any layer', () => {
  assert.equal(settings({ flags: { ringBytes: '8MiB' }, env: { SOCKMESH_RING_BYTES: '1Mi' } }).ringBytes, 8 << 20);
  assert.equal(settings({ flags: {}, env: { SOCKMESH_RING_BYTES: '1Mi' } }).ringBytes, 1 << 20);
  assert.equal(settings({ flags: {}, env: {}, file: fileLayer({ ringBytes: 65536 }) }).ringBytes, 65536);
  assert.equal(settings({ flags: {}, env: {}, file: fileLayer({ ringBytes: '1 GiB' }) }).ringBytes, 1 << 30);
  assert.equal(settings({ flags: { ringBytes: '256k' }, env: {} }).ringBytes, 256 * 1024);
  assert.deepEqual(refused({ flags: { ringBytes: '3MiB' }, env: { SOCKMESH_RING_BYTES: '2TiB' }, file: fileLayer({ ringBytes: 4096 }) })
    .map(formatSettingsIssue), [
    'mesh.yaml:42:3 agent.ringBytes: must be a power of two from 64KiB to 1GiB, e.g. 4MiB or 4194304, got 4096',
    'env SOCKMESH_RING_BYTES: must be a power of two from 64KiB to 1GiB, e.g. 4MiB or 4194304, got "2TiB"',
    'flag --ring-bytes: must be a power of two from 64KiB to 1GiB, e.g. 4MiB or 4194304, got "3MiB"',
  ]);
});

test('edgeTtl: a duration up to 7d or off, from any layer, and never under three report intervals, blamed where it was set', () => {
  assert.equal(settings({ flags: { edgeTtl: '1h' }, env: {} }).edgeTtlMs, 3_600_000);
  assert.equal(settings({ flags: {}, env: { SOCKMESH_EDGE_TTL: '2d' } }).edgeTtlMs, 2 * 86_400_000);
  assert.equal(settings({ flags: {}, env: {}, file: fileLayer({ edgeTtl: 'off' }) }).edgeTtlMs, 0);
  assert.equal(settings({ flags: {}, env: {}, file: fileLayer({ edgeTtl: 0, reportInterval: '1h' }) }).edgeTtlMs, 0, 'off allows any interval');
  assert.equal(settings({ flags: { edgeTtl: '3s', reportInterval: '1s' }, env: {} }).edgeTtlMs, 3000, 'exactly three intervals');
  assert.deepEqual(refused({ flags: { edgeTtl: 'soon' }, env: {}, file: fileLayer({ edgeTtl: '8d' }) }).map(formatSettingsIssue), [
    'mesh.yaml:42:3 agent.edgeTtl: must be a duration up to 7d, e.g. 10m, or off (0), got "8d"',
    'flag --edge-ttl: must be a duration up to 7d, e.g. 10m, or off (0), got "soon"',
  ]);
  const why = 'open connections refresh their edge once per report interval, so edgeTtl must be at least 3 of them';
  assert.deepEqual(refused({ flags: {}, env: {}, file: fileLayer({ edgeTtl: '20s' }) }).map(formatSettingsIssue), [
    `mesh.yaml:42:3 agent.edgeTtl: ${why} (edgeTtl 20000 ms, reportInterval 10000 ms), or off`,
  ]);
  assert.deepEqual(refused({ flags: { edgeTtl: '20s' }, env: {}, file: fileLayer({ edgeTtl: '1h' }) }).map(formatSettingsIssue), [
    `flag --edge-ttl: ${why} (edgeTtl 20000 ms, reportInterval 10000 ms), or off`,
  ]);
  // Listed with the other settings' errors, at once - unless one of the two compared values is one of them.
  assert.deepEqual(refused({ flags: { logLevel: 'LOUD' }, env: {}, file: fileLayer({ edgeTtl: '20s' }) }).map(formatSettingsIssue), [
    'flag --log-level: must be one of debug, info, warn, error, got "LOUD"',
    `mesh.yaml:42:3 agent.edgeTtl: ${why} (edgeTtl 20000 ms, reportInterval 10000 ms), or off`,
  ]);
  assert.deepEqual(refused({ flags: { reportInterval: 'soon' }, env: {}, file: fileLayer({ edgeTtl: '20s' }) }).length, 1, 'no comparison with a bad interval');
  // Unset, it follows a long interval rather than refuse it.
  assert.equal(settings({ flags: {}, env: { SOCKMESH_REPORT_INTERVAL: '5m' } }).edgeTtlMs, 15 * 60_000);
  assert.equal(settings({ flags: {}, env: { SOCKMESH_REPORT_INTERVAL: '1m' } }).edgeTtlMs, 10 * 60_000);
});
