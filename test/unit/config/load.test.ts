import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, formatConfigIssue, type ConfigIssue } from '../../../src/config/errors';
import { loadMeshFile, parseMesh, readMeshText } from '../../../src/config/load';
import { parseCidr, parseIp, serviceFrontends, serviceKey, type MeshConfig } from '../../../src/config/model';
import { mergeSettings } from '../../../src/config/settings';
import { servicePorts } from '../../../src/agent/compile';

// dist/test/unit/config → repository root.
const EXAMPLE = path.resolve(__dirname, '../../../../examples/mesh.yaml');

const HEAD = [
  'apiVersion: sockmesh.io/v1alpha1',
  'kind: Mesh',
  'network:',
  '  vipCIDRs: [127.77.0.0/16, "fd77::/64"]',
];

/** A mesh document: the usual header, then `body` lines. */
function mesh(...body: string[]): string {
  return [...HEAD, ...body, ''].join('\n');
}

/** 1-based line and column where the nth occurrence of `needle` starts. */
function pos(text: string, needle: string, nth = 0): { line: number; column: number } {
  let i = -1;
  for (let n = 0; n <= nth; n++) {
    i = text.indexOf(needle, i + 1);
    assert.ok(i >= 0, `needle ${JSON.stringify(needle)} #${nth} not in the document`);
  }
  const before = text.slice(0, i);
  return { line: before.split('\n').length, column: i - before.lastIndexOf('\n') };
}

function ok(text: string): MeshConfig {
  const r = parseMesh(text, 'mesh.yaml');
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatConfigIssue).join('\n'));
  return r.config;
}

function issues(text: string): ConfigIssue[] {
  const r = parseMesh(text, 'mesh.yaml');
  assert.equal(r.ok, false, 'expected the document to be refused');
  return r.ok ? [] : r.issues;
}

/** Exactly one issue at `path`, located where `needle` (its nth occurrence) starts, with a message matching `message`. */
function expectIssue(text: string, issuePath: string, needle: string, message: RegExp, nth = 0): void {
  const all = issues(text);
  const found = all.filter((i) => i.path === issuePath);
  assert.equal(found.length, 1, `one issue at ${issuePath}, got:\n${all.map(formatConfigIssue).join('\n')}`);
  const [issue] = found;
  assert.ok(issue);
  assert.deepEqual({ line: issue.line, column: issue.column }, pos(text, needle, nth), formatConfigIssue(issue));
  assert.match(issue.message, message);
  assert.equal(issue.file, 'mesh.yaml');
}

/** One service `reviews` with the given extra lines (indented under the list item). */
function service(...lines: string[]): string[] {
  return ['services:', '  - name: reviews', ...lines.map((l) => `    ${l}`)];
}

const PORTS = 'ports: [{ name: http, port: 9080 }]';

test('the example mesh loads: frontend → reviews v1/v2 → ratings', () => {
  const config = loadMeshFile(EXAMPLE);
  assert.deepEqual(config.services.map(serviceKey), ['default/frontend', 'default/reviews', 'default/ratings']);
  assert.deepEqual(config.workloads.map((w) => w.cgroup), [
    'sockmesh-demo/frontend', 'sockmesh-demo/reviews-v1', 'sockmesh-demo/reviews-v2', 'sockmesh-demo/reviews-v3', 'sockmesh-demo/ratings',
  ]);
  assert.deepEqual(config.network.vipCIDRs.map((c) => c.text), ['127.77.0.0/16', 'fd77::/64']);

  const reviews = config.services[1];
  assert.ok(reviews);
  assert.deepEqual(reviews.backends.map((b) => [b.address.text, b.weight, b.labels.version]), [
    ['127.0.0.21', 1, 'v1'], ['127.0.0.22', 3, 'v2'], ['127.0.0.23', 0, 'v3'], ['::1', 1, 'v2'],
  ]);
  assert.deepEqual(serviceFrontends(reviews).map((f) => `${f.vip.text} ${f.port}/${f.protocol} → ${f.targetPort}`), [
    '127.77.0.10 9080/TCP → 9080', 'fd77::10 9080/TCP → 9080',
  ]);

  // Defaults: protocol TCP, targetPort = port, weight 1, namespace "default".
  const ratings = config.services[2];
  assert.ok(ratings);
  assert.deepEqual(ratings.ports, [
    { name: 'http', port: 9080, protocol: 'TCP', targetPort: 9080 },
    { name: 'stats', port: 8125, protocol: 'UDP', targetPort: 18125 },
  ]);
  assert.equal(ratings.backends[0]?.weight, 1);
  assert.equal(config.workloads[1]?.namespace, 'default');

  assert.deepEqual(config.agent, { cgroupRoot: 'sockmesh-demo', metricsAddress: { host: '127.0.0.1', port: 9464 }, reportIntervalMs: 10_000, rttSamples: 'all', ringBytes: 4 << 20, logLevel: 'info' });
});

test('the example file layer merges into agent settings', () => {
  const r = parseMesh(fs.readFileSync(EXAMPLE, 'utf8'), EXAMPLE);
  assert.ok(r.ok);
  const merged = mergeSettings({ flags: {}, env: {}, file: r.agentLayer });
  assert.ok(merged.ok);
  assert.equal(merged.settings.cgroupRoot, 'sockmesh-demo');
  assert.equal(merged.settings.bpffsDir, '/sys/fs/bpf/sockmesh/default');
  // Positions still resolve after loading, for errors found later (e.g. in a merge).
  const text = fs.readFileSync(EXAMPLE, 'utf8');
  assert.deepEqual(r.agentLayer.source(['agent', 'reportInterval']), { file: EXAMPLE, ...pos(text, '10s') });
});

test('an invalid service leaves the agent: section usable; an invalid section, bad YAML or no mapping do not', () => {
  const text = fs.readFileSync(EXAMPLE, 'utf8');
  const badWeight = text.replace(/weight: \d+/, 'weight: 5000');
  assert.notEqual(badWeight, text);
  const r = parseMesh(badWeight, 'mesh.yaml');
  assert.ok(!r.ok && r.agentLayer, 'the agent section is still known');
  const merged = mergeSettings({ flags: {}, env: {}, file: r.agentLayer });
  assert.ok(merged.ok && merged.settings.cgroupRoot === 'sockmesh-demo', 'the file\'s settings, not the defaults');
  for (const [what, broken] of [
    ['an invalid agent setting', badWeight.replace(/logLevel: \w+/, 'logLevel: LOUD')],
    ['a YAML syntax error', `${text}\nservices: [\n`],
    ['a document that is no mapping', ''],
  ] as const) {
    const b = parseMesh(broken, 'mesh.yaml');
    assert.ok(!b.ok && b.agentLayer === undefined, what);
  }
});

test('addresses: IPv4 as ::ffff:a.b.c.d, IPv6 in canonical form and 16 bytes', () => {
  const config = ok(mesh(...service('vips: [127.77.0.10, "FD77:0:0::00A"]', PORTS, 'backends: [{ address: "fd77:0:0:1:0:0:0:21" }]')));
  const [v4, v6] = config.services[0]?.vips ?? [];
  assert.deepEqual([v4?.family, v4?.text, v4?.bytes.toString('hex')], [4, '127.77.0.10', '00000000000000000000ffff7f4d000a']);
  assert.deepEqual([v6?.family, v6?.text, v6?.bytes.toString('hex')], [6, 'fd77::a', 'fd77000000000000000000000000000a']);
  assert.equal(config.services[0]?.backends[0]?.address.text, 'fd77:0:0:1::21');
});

test('model helpers: parseIp and parseCidr refuse what the loader refuses', () => {
  assert.equal(parseIp('127.077.0.1').ok, false);
  assert.equal(parseIp('::ffff:127.0.0.1').ok, false);
  assert.equal(parseIp('fe80::1%eth0').ok, false);
  const cidr = parseCidr('fd77:0::/64');
  assert.ok(cidr.ok);
  assert.equal(cidr.value.text, 'fd77::/64');
  const hostBits = parseCidr('fd77::1/64');
  assert.ok(!hostBits.ok);
  assert.match(hostBits.reason, /host bits are set \(the network is fd77::\/64\)/);
});

test('a service with no backends is allowed (the kernel refuses its connects)', () => {
  const config = ok(mesh(
    'services:',
    '  - { name: a, vips: [127.77.0.1], ports: [{ port: 80 }], backends: [] }',
    '  - { name: b, vips: [127.77.0.2], ports: [{ port: 80 }] }',
  ));
  assert.deepEqual(config.services.map((s) => s.backends.length), [0, 0]);
});

test('the same name in two namespaces, or the same port in two protocols, is fine', () => {
  const config = ok(mesh(
    'services:',
    '  - { name: a, vips: [127.77.0.1], ports: [{ name: dns, port: 53 }, { name: dns-tcp, port: 53, protocol: UDP }] }',
    '  - { name: a, namespace: other, vips: [127.77.0.2], ports: [{ port: 80 }] }',
  ));
  assert.deepEqual(config.services.map(serviceKey), ['default/a', 'other/a']);
});

test('duplicate service name in a namespace', () => {
  const text = mesh(
    'services:',
    '  - { name: reviews, vips: [127.77.0.1], ports: [{ port: 80 }] }',
    '  - { name: ratings, vips: [127.77.0.2], ports: [{ port: 80 }] }',
    '  - { name: reviews, vips: [127.77.0.3], ports: [{ port: 80 }] }',
  );
  expectIssue(text, 'services[2].name', 'reviews', /duplicate service default\/reviews \(also services\[0\]\)/, 1);
});

test('duplicate VIP: in two services, and twice in one', () => {
  const text = mesh(
    'services:',
    '  - { name: a, vips: [127.77.0.1], ports: [{ port: 80 }] }',
    '  - { name: b, vips: ["fd77::1", 127.77.0.1], ports: [{ port: 80 }] }',
    '  - { name: c, vips: ["fd77::5", "FD77::5"], ports: [{ port: 80 }] }',
  );
  expectIssue(text, 'services[1].vips[1]', '127.77.0.1', /VIP 127.77.0.1 is already used by service default\/a \(services\[0\]\.vips\[0\]\)/, 1);
  expectIssue(text, 'services[2].vips[1]', '"FD77::5"', /duplicate VIP fd77::5 \(also vips\[0\]\)/);
});

test('VIP outside every vipCIDR, IPv4 and IPv6', () => {
  const text = mesh(...service('vips: [127.78.0.1, "fd78::1"]', PORTS));
  expectIssue(text, 'services[0].vips[0]', '127.78.0.1', /outside every network\.vipCIDRs range \(127\.77\.0\.0\/16, fd77::\/64\)/);
  expectIssue(text, 'services[0].vips[1]', '"fd78::1"', /VIP fd78::1 is outside/);
});

test('a backend that is a VIP, or inside the VIP ranges, is refused: connect4 does not translate twice', () => {
  const text = mesh(
    'services:',
    '  - { name: a, vips: [127.77.0.1], ports: [{ port: 80 }], backends: [{ address: 127.0.0.2 }] }',
    '  - { name: b, vips: [127.77.0.3, "fd77::3"], ports: [{ port: 80 }], backends: [{ address: 127.77.0.1 }, { address: "fd77::9" }, { address: 127.0.0.5 }] }',
  );
  expectIssue(text, 'services[1].backends[0].address', '127.77.0.1', /backend 127\.77\.0\.1 is the VIP of service default\/a: VIPs are translated once, at connect\(\), so a backend must be an endpoint/, 1);
  expectIssue(text, 'services[1].backends[1].address', '"fd77::9"', /backend fd77::9 is inside network\.vipCIDRs/);
  assert.equal(issues(text).length, 2, 'the real endpoints pass');
});

test('bad CIDRs', () => {
  const text = [
    'apiVersion: sockmesh.io/v1alpha1',
    'kind: Mesh',
    'network:',
    '  vipCIDRs:',
    '    - 127.77.0.1/16',
    '    - 10.0.0.0/33',
    '    - "fd77::/129"',
    '    - 10.1.0.0',
    '    - 300.0.0.0/8',
    '',
  ].join('\n');
  expectIssue(text, 'network.vipCIDRs[0]', '127.77.0.1/16', /host bits are set \(the network is 127\.77\.0\.0\/16\)/);
  expectIssue(text, 'network.vipCIDRs[1]', '10.0.0.0/33', /prefix must be an integer in 0\.\.32/);
  expectIssue(text, 'network.vipCIDRs[2]', '"fd77::/129"', /prefix must be an integer in 0\.\.128/);
  expectIssue(text, 'network.vipCIDRs[3]', '10.1.0.0', /not a CIDR/);
  expectIssue(text, 'network.vipCIDRs[4]', '300.0.0.0/8', /not an IP address/);
});

test('VIP ranges: not every address, not twice, not one inside another', () => {
  const text = [
    'apiVersion: sockmesh.io/v1alpha1',
    'kind: Mesh',
    'network:',
    '  vipCIDRs: [0.0.0.0/0, 10.96.0.0/16, 10.96.0.0/16, 10.96.4.0/24, 10.0.0.0/8, "::/0"]',
    '',
  ].join('\n');
  expectIssue(text, 'network.vipCIDRs[0]', '0.0.0.0/0', /^0\.0\.0\.0\/0 covers every IPv4 address, pods and loopback included/);
  expectIssue(text, 'network.vipCIDRs[2]', '10.96.0.0/16', /^duplicate of vipCIDRs\[1\]$/, 1);
  expectIssue(text, 'network.vipCIDRs[3]', '10.96.4.0/24', /^inside vipCIDRs\[1\] \(10\.96\.0\.0\/16\): remove one of them$/);
  expectIssue(text, 'network.vipCIDRs[1]', '10.96.0.0/16', /^inside vipCIDRs\[4\] \(10\.0\.0\.0\/8\)/);
  expectIssue(text, 'network.vipCIDRs[5]', '"::/0"', /covers every IPv6 address/);
  assert.equal(issues(text).filter((i) => i.path === 'network.vipCIDRs[4]').length, 0, 'the widest of nested ranges is fine');
});

test('invalid IP addresses', () => {
  const text = mesh(...service(
    'vips: [127.77.0.300, "::ffff:127.77.0.1", 0.0.0.0]',
    PORTS,
    'backends:',
    '  - address: "fd77::zz"',
    '  - address: 127.0.0.1.5',
    '  - address: 2130706433',
  ));
  expectIssue(text, 'services[0].vips[0]', '127.77.0.300', /not an IP address: "127\.77\.0\.300"/);
  expectIssue(text, 'services[0].vips[1]', '"::ffff:127.77.0.1"', /IPv4-mapped IPv6 address .*write it as IPv4 \(127\.77\.0\.1\)/);
  expectIssue(text, 'services[0].vips[2]', '0.0.0.0', /unspecified address/);
  expectIssue(text, 'services[0].backends[0].address', '"fd77::zz"', /not an IP address/);
  expectIssue(text, 'services[0].backends[1].address', '127.0.0.1.5', /not an IP address/);
  expectIssue(text, 'services[0].backends[2].address', '2130706433', /must be a string, got 2130706433/);
});

test('ports and targetPorts out of 1..65535', () => {
  const text = mesh(...service(
    'vips: [127.77.0.1]',
    'ports:',
    '  - { name: a, port: 0 }',
    '  - { name: b, port: 70000 }',
    '  - { name: c, port: 80, targetPort: 65536 }',
    '  - { name: d, port: "81" }',
  ));
  expectIssue(text, 'services[0].ports[0].port', '0 }', /^must be an integer in 1\.\.65535, got 0$/);
  expectIssue(text, 'services[0].ports[1].port', '70000', /must be an integer in 1\.\.65535, got 70000/);
  expectIssue(text, 'services[0].ports[2].targetPort', '65536', /must be a port number 1\.\.65535 or a port name, got 65536/);
  expectIssue(text, 'services[0].ports[3].port', '"81"', /must be an integer in 1\.\.65535, got "81"/);
});

test('a named targetPort resolves per backend; backends without that name are not its backends', () => {
  const cfg = ok(mesh(...service(
    'vips: [127.77.0.1]',
    'ports:',
    '  - { name: http, port: 80, targetPort: web }',
    '  - { name: admin, port: 81, targetPort: 9901 }',
    'backends:',
    '  - { address: 127.0.0.11, ports: { web: 8080 } }',
    '  - { address: 127.0.0.12, ports: { web: 8081 } }',
    '  - { address: 127.0.0.13 }',
  )));
  const byPort = Object.fromEntries(servicePorts(cfg).map((sp) => [sp.portName, sp.backends.map((b) => `${b.addr.text}:${b.port}`)]));
  assert.deepEqual(byPort, {
    http: ['127.0.0.11:8080', '127.0.0.12:8081'],
    admin: ['127.0.0.11:9901', '127.0.0.12:9901', '127.0.0.13:9901'],
  });
});

test('named targetPorts: a name no backend declares, a bad name, a bad backend port', () => {
  const typo = mesh(...service(
    'vips: [127.77.0.1]',
    'ports: [{ name: http, port: 80, targetPort: wbe }]',
    'backends:',
    '  - { address: 127.0.0.11, ports: { web: 8080 } }',
  ));
  expectIssue(typo, 'services[0].ports[0].targetPort', 'wbe', /^no backend declares a port named "wbe" \(backends\[\]\.ports\)$/);
  const bad = mesh(...service(
    'vips: [127.77.0.1]',
    'ports: [{ name: grpc, port: 81, targetPort: Not_A_Name }]',
    'backends:',
    '  - { address: 127.0.0.11, ports: { web: 0 } }',
  ));
  expectIssue(bad, 'services[0].ports[0].targetPort', 'Not_A_Name', /^must be a port number 1\.\.65535 or a port name \(a DNS-1123 label.*got "Not_A_Name"$/);
  expectIssue(bad, 'services[0].backends[0].ports.web', '0 }', /must be an integer in 1\.\.65535, got 0/);
});

test('weights out of 0..1000 or not integers', () => {
  const text = mesh(...service(
    'vips: [127.77.0.1]',
    PORTS,
    'backends:',
    '  - { address: 127.0.0.1, weight: 1001 }',
    '  - { address: 127.0.0.2, weight: -1 }',
    '  - { address: 127.0.0.3, weight: 1.5 }',
    '  - { address: 127.0.0.4, weight: "2" }',
    '  - { address: 127.0.0.5, weight: 0 }',
  ));
  expectIssue(text, 'services[0].backends[0].weight', '1001', /must be an integer in 0\.\.1000, got 1001/);
  expectIssue(text, 'services[0].backends[1].weight', '-1', /got -1/);
  expectIssue(text, 'services[0].backends[2].weight', '1.5', /got 1\.5/);
  expectIssue(text, 'services[0].backends[3].weight', '"2"', /got "2"/);
  assert.equal(issues(text).length, 4, 'weight 0 (drained) is valid');
});

test('port names: required with more than one port, unique; (port, protocol) unique', () => {
  const text = mesh(...service(
    'vips: [127.77.0.1]',
    'ports:',
    '  - { name: http, port: 80 }',
    '  - { port: 81 }',
    '  - { name: http, port: 82 }',
    '  - { name: again, port: 80, protocol: TCP }',
  ));
  expectIssue(text, 'services[0].ports[1].name', '{ port: 81 }', /required when a service has more than one port/);
  expectIssue(text, 'services[0].ports[2].name', 'http', /duplicate port name "http" \(also ports\[0\]\)/, 1);
  expectIssue(text, 'services[0].ports[3].port', '80, protocol', /duplicate port 80\/TCP \(also ports\[0\]\)/);
});

test('backend family must match a VIP family; backends are unique', () => {
  const text = mesh(...service(
    'vips: [127.77.0.1]',
    PORTS,
    'backends:',
    '  - address: "fd00::21"',
    '  - address: 127.0.0.21',
    '  - address: 127.0.0.21',
  ));
  expectIssue(text, 'services[0].backends[0].address', '"fd00::21"', /IPv6 backend fd00::21, but the service has only IPv4 VIPs/);
  expectIssue(text, 'services[0].backends[2].address', '127.0.0.21', /duplicate backend 127\.0\.0\.21 \(also backends\[1\]\)/, 1);
});

test('workloads: duplicate names, duplicate cgroups, bad cgroup paths', () => {
  const text = mesh(
    'workloads:',
    '  - { name: a, cgroup: demo/a }',
    '  - { name: a, cgroup: demo/b }',
    '  - { name: c, cgroup: demo/a }',
    '  - { name: d, cgroup: /sys/fs/cgroup/d }',
    '  - { name: e, cgroup: demo/../e }',
    '  - { name: f, cgroup: "demo//f" }',
    '  - { name: g, namespace: other, cgroup: demo/g }',
    '  - { name: a, namespace: other, cgroup: demo/h }',
  );
  expectIssue(text, 'workloads[1].name', 'a, cgroup: demo/b', /duplicate workload default\/a \(also workloads\[0\]\)/);
  expectIssue(text, 'workloads[2].cgroup', 'demo/a', /cgroup demo\/a already belongs to workloads\[0\]/, 1);
  expectIssue(text, 'workloads[3].cgroup', '/sys/fs/cgroup/d', /relative to the cgroup v2 mount/);
  expectIssue(text, 'workloads[4].cgroup', 'demo/../e', /"\." or "\.\." segments/);
  expectIssue(text, 'workloads[5].cgroup', '"demo//f"', /empty segments/);
  assert.equal(issues(text).length, 5, 'other/a is not default/a');
});

test('unknown fields are refused at every level, pointing at the key', () => {
  const text = mesh(
    'network2: {}',
    'services:',
    '  - name: reviews',
    '    vip: [127.77.0.1]',
    '    vips: [127.77.0.1]',
    '    ports: [{ port: 80, proto: TCP }]',
    '    backends: [{ address: 127.0.0.1, wieght: 2 }]',
    'workloads:',
    '  - { name: a, cgroup: a, label: {} }',
  ).replace('  vipCIDRs:', '  extra: 1\n  vipCIDRs:');
  const all = issues(text);
  // A near miss of a field the object has is named (the typo's likely fix); anything else is just unknown.
  for (const [issuePath, key, message] of [
    ['network.extra', 'extra', 'unknown field'], ['network2', 'network2', 'unknown field (did you mean network?)'],
    ['services[0].vip', 'vip:', 'unknown field (did you mean vips?)'], ['services[0].ports[0].proto', 'proto', 'unknown field (did you mean protocol?)'],
    ['services[0].backends[0].wieght', 'wieght', 'unknown field (did you mean weight?)'], ['workloads[0].label', 'label', 'unknown field (did you mean labels?)'],
  ] as const) {
    const issue = all.find((i) => i.path === issuePath);
    assert.ok(issue, `no issue at ${issuePath}:\n${all.map(formatConfigIssue).join('\n')}`);
    assert.equal(issue.message, message);
    assert.deepEqual({ line: issue.line, column: issue.column }, pos(text, key));
  }
  assert.equal(all.length, 6);
});

test('a missing field is reported where it is missing from', () => {
  const text = mesh('services:', '  - name: reviews', '    ports: [{ port: 80 }]');
  expectIssue(text, 'services[0].vips', 'name: reviews', /^required$/);
  expectIssue(mesh().replace('kind: Mesh\n', ''), 'kind', 'apiVersion', /required: "Mesh"/);
});

test('labels follow Kubernetes rules; numbers must be quoted', () => {
  const text = mesh(
    'workloads:',
    '  - name: a',
    '    cgroup: a',
    '    labels: { app.kubernetes.io/name: a, version: 2, "no spaces": x, tier: "-bad" }',
  );
  expectIssue(text, 'workloads[0].labels.version', '2,', /quote it \("2"\)/);
  expectIssue(text, 'workloads[0].labels["no spaces"]', '"no spaces"', /label key/);
  expectIssue(text, 'workloads[0].labels.tier', '"-bad"', /label value/);
  assert.equal(issues(text).length, 3);
});

test('the agent section is checked with the file, with positions', () => {
  const text = mesh('agent:', '  metricsAddress: 9464', '  reportInterval: 50ms', '  colour: blue');
  expectIssue(text, 'agent.metricsAddress', '9464', /must be a string, got 9464/);
  expectIssue(text, 'agent.reportInterval', '50ms', /must be a duration in 100ms\.\.1h/);
  expectIssue(text, 'agent.colour', 'colour', /unknown setting \(known: instance, .*reportInterval/);
});

test('YAML syntax errors carry line and column', () => {
  const text = mesh('services:', '  - name: "reviews', '    vips: [1');
  const all = issues(text);
  assert.ok(all.length >= 1);
  for (const i of all) {
    assert.equal(i.path, '');
    assert.match(i.message, /^YAML: /);
    assert.ok(i.line >= 6, formatConfigIssue(i));
  }
  const dup = issues(mesh('kind: Mesh'));
  assert.equal(dup.length, 1);
  assert.deepEqual([dup[0]?.line, dup[0]?.column, dup[0]?.message], [5, 1, 'YAML: Map keys must be unique']);
});

test('not a mapping, or empty', () => {
  for (const text of ['', '- a\n', 'just text\n']) {
    const [issue, ...rest] = issues(text);
    assert.equal(rest.length, 0);
    assert.deepEqual([issue?.line, issue?.column, issue?.path], [1, 1, '']);
    assert.match(issue?.message ?? '', text === '' ? /^the file is empty/ : /the document must be a mapping/);
  }
});

test('every error is reported at once, in file order, one per line in the ConfigError', () => {
  const text = mesh(
    'services:',
    '  - name: a',
    '    vips: [127.77.0.1]',
    '    ports: [{ port: 80 }]',
    '    backends: [{ address: 127.0.0.1, weight: 5000 }]',
    '  - name: b',
    '    vips: [127.77.0.1, 10.0.0.1]',
    '    ports: [{ port: 99999 }]',
    'workloads:',
    '  - { name: w, cgroup: "/w" }',
    'agent:',
    '  logLevel: loud',
  );
  const all = issues(text);
  assert.deepEqual(all.map((i) => `${i.line}:${i.column} ${i.path}`), [
    `${pos(text, '5000').line}:${pos(text, '5000').column} services[0].backends[0].weight`,
    `${pos(text, '127.77.0.1', 1).line}:${pos(text, '127.77.0.1', 1).column} services[1].vips[0]`,
    `${pos(text, '10.0.0.1').line}:${pos(text, '10.0.0.1').column} services[1].vips[1]`,
    `${pos(text, '99999').line}:${pos(text, '99999').column} services[1].ports[0].port`,
    `${pos(text, '"/w"').line}:${pos(text, '"/w"').column} workloads[0].cgroup`,
    `${pos(text, 'loud').line}:${pos(text, 'loud').column} agent.logLevel`,
  ]);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-config-'));
  try {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, text);
    assert.throws(() => loadMeshFile(file), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.name, 'ConfigError');
      assert.equal(err.code, 'ECONFIG');
      assert.equal(err.issues.length, 6);
      const lines = err.message.split('\n');
      assert.equal(lines.length, 6);
      assert.equal(lines[0], `${file}:${pos(text, '5000').line}:${pos(text, '5000').column} services[0].backends[0].weight: must be an integer in 0..1000, got 5000`);
      return true;
    });
    // A missing file is an fs error, not a config error.
    assert.throws(() => loadMeshFile(path.join(dir, 'nope.yaml')), { code: 'ENOENT' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an alias is located where it is used', () => {
  const text = mesh(
    'services:',
    '  - { name: a, vips: &v [127.77.0.1], ports: [{ port: 80 }] }',
    '  - { name: b, vips: *v, ports: [{ port: 80 }] }',
  );
  expectIssue(text, 'services[1].vips[0]', '*v', /already used by service default\/a/);
});

test('a second YAML document in a mesh file is named for what it is, where it starts', () => {
  const r = parseMesh('apiVersion: sockmesh.io/v1alpha1\nkind: Mesh\n---\nservices: []\n', 'mesh.yaml');
  assert.ok(!r.ok);
  assert.deepEqual(r.issues.map((i) => `${i.line}:${i.column} ${i.message}`),
    ['3:1 YAML: a mesh file is one document; a second one starts here (a `---` line): remove it, or split the file']);
});

test('a mesh file that is not UTF-8 is refused at its line; a BOM is dropped; an empty file says so; long values are cut', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-text-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const latin1 = path.join(dir, 'latin1.yaml');
  fs.writeFileSync(latin1, Buffer.concat([Buffer.from('apiVersion: sockmesh.io/v1alpha1\nkind: Mesh\nservices:\n  - name: caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
  assert.throws(() => readMeshText(latin1), { message: `${latin1} is not UTF-8 text (line 4 has bytes that are not): save it as UTF-8` });
  const bom = path.join(dir, 'bom.yaml');
  fs.writeFileSync(bom, '\uFEFFapiVersion: 1\n');
  assert.equal(readMeshText(bom), 'apiVersion: 1\n');
  const empty = parseMesh('\n \n', 'mesh.yaml');
  assert.ok(!empty.ok && /^the file is empty: a mesh file starts with apiVersion/.test(empty.issues[0]!.message));
  const blob = parseMesh(`apiVersion: sockmesh.io/v1alpha1\nkind: Mesh\nnetwork: { vipCIDRs: ["${'x'.repeat(5000)}"] }\n`, 'mesh.yaml');
  assert.ok(!blob.ok);
  const msg = blob.issues.map((i) => i.message).join('\n');
  assert.ok(msg.length < 400 && msg.includes('... (5000 characters)'), msg);
});

test('an alias with no anchor before it is reported where it is used', () => {
  const r = parseMesh('apiVersion: sockmesh.io/v1alpha1\nkind: Mesh\nnetwork:\n  vipCIDRs: *ranges\n', 'mesh.yaml');
  assert.ok(!r.ok);
  assert.deepEqual(r.issues.map((i) => `${i.line}:${i.column} ${i.message}`), ['4:13 YAML: Unresolved alias (the anchor must be set before the alias): ranges']);
});
