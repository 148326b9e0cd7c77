/**
 * `sockmesh validate`'s core: every problem an agent would refuse the file
 * for, found without a kernel, with file positions; and room in the kernel
 * tables counted as the writer counts it.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkMesh, embeddedMeshes } from '../../../src/agent/check';
import { repoRoot } from '../../../src/bpf/native';

const ROOM = { frontends: 65536, slots: 262144 };

function mesh(services: string, agent = ''): string {
  return `apiVersion: sockmesh.io/v1alpha1
kind: Mesh
network:
  vipCIDRs: [10.96.0.0/12, fd00:96::/108]
services:
${services}
workloads:
  - { name: web, cgroup: mesh/web }
${agent}`;
}

const WEB = `  - name: web
    vips: [10.96.0.10, fd00:96::10]
    ports:
      - { name: http, port: 80, targetPort: 8080 }
      - { name: admin, port: 9000 }
    backends:
      - { address: 10.0.0.1, weight: 3 }
      - { address: 10.0.0.2, weight: 1 }
      - { address: fd00::1 }`;

test('a valid file: what it would put in the kernel, counted per service port and family', () => {
  const c = checkMesh(mesh(WEB), 'mesh.yaml', ROOM);
  assert.ok(c.valid, JSON.stringify(c));
  // 2 ports x 2 families; v4 frontends get the v4 backends (3:1 = 4 slots), v6 the v6 one (1 slot).
  assert.deepEqual({ ...c, room: undefined }, {
    file: 'mesh.yaml', valid: true, services: 1, servicePorts: 4, frontends: 4, backends: 3, slots: 2 * (4 + 1), workloads: 1, room: undefined,
    warnings: ['workload default/web: cgroup mesh/web is outside cgroupRoot sockmesh (as this file sets it): not enrolled, no VIPs and no telemetry'],
  });
  const enrolled = checkMesh(mesh(WEB, 'agent:\n  cgroupRoot: mesh\n'), 'mesh.yaml', ROOM);
  assert.deepEqual(enrolled.valid && enrolled.warnings, [], 'below the cgroupRoot the file sets: no warning');
});

test('schema and cross-check errors carry file:line:column and path, all of them', () => {
  const c = checkMesh(mesh(`${WEB}
  - name: web2
    vips: [10.96.0.10]
    ports:
      - { port: 70000 }
    backends:
      - { address: 10.0.0.1, weight: 1001 }`), 'bad.yaml', ROOM);
  assert.equal(c.valid, false);
  const errors = !c.valid ? c.errors.join('\n') : '';
  for (const want of [/bad\.yaml:\d+:\d+ services\[1\]\.vips\[0\]: /, /bad\.yaml:\d+:\d+ services\[1\]\.ports\[0\]\.port: /, /bad\.yaml:\d+:\d+ services\[1\]\.backends\[0\]\.weight: /]) {
    assert.match(errors, want);
  }
});

test('the agent settings in the file are checked too', () => {
  const c = checkMesh(mesh(WEB, 'agent:\n  reportInterval: soon\n'), 'mesh.yaml', ROOM);
  assert.equal(c.valid, false);
  assert.match(!c.valid ? c.errors.join('\n') : '', /mesh\.yaml:\d+:\d+ agent\.reportInterval: /);
});

test('a file too big for the tables is invalid, with the counts the writer would give', () => {
  const small = { frontends: 3, slots: 100 };
  const c = checkMesh(mesh(WEB), 'mesh.yaml', small);
  assert.equal(c.valid, false);
  assert.match(!c.valid ? c.errors[0]! : '', /mesh\.yaml: the mesh does not fit the kernel tables: 4 frontends \(VIP:port pairs; 0 in the kernel, 4 new\) for a table of 3\. Nothing was changed/);
  assert.ok(checkMesh(mesh(WEB), 'mesh.yaml', { frontends: 4, slots: 10 }).valid, 'exactly full fits');
  assert.match(JSON.stringify(checkMesh(mesh(WEB), 'mesh.yaml', { frontends: 4, slots: 9 })), /10 backend slots \(0 live, 10 for the new generations/);
});

test('sockmesh validate: a line per file, errors indented below, exit 1 if any file is invalid', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-validate-'));
  try {
    const good = path.join(dir, 'good.yaml');
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(good, mesh(WEB));
    fs.writeFileSync(bad, mesh(WEB, 'agent:\n  bogus: 1\n'));
    const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
    const ok = execFileSync(process.execPath, [cli, 'validate', good], { encoding: 'utf8' });
    assert.match(ok, /good\.yaml: valid: 1 services \(4 service ports\), 4 frontends of \d+, 3 backends, 10 backend slots of \d+, 1 workloads\n {2}warning: workload default\/web: cgroup mesh\/web is outside cgroupRoot sockmesh/);
    assert.throws(() => execFileSync(process.execPath, [cli, 'validate', good, bad, path.join(dir, 'missing.yaml')], { encoding: 'utf8', stdio: 'pipe' }),
      (err: unknown) => {
        const e = err as { status: number; stdout: string };
        assert.equal(e.status, 2, 'a file that cannot be read: 2, not the 1 of an invalid mesh');
        assert.match(e.stdout, /good\.yaml: valid/);
        assert.match(e.stdout, /bad\.yaml: invalid, 1 error\n {2}.*bad\.yaml:\d+:\d+ agent\.bogus: /);
        assert.match(e.stdout, /missing\.yaml: invalid, 1 error\n {2}.*missing\.yaml: cannot read: ENOENT/);
        return true;
      });
    assert.throws(() => execFileSync(process.execPath, [cli, 'validate', good, bad], { encoding: 'utf8', stdio: 'pipe' }),
      (err: unknown) => (err as { status: number }).status === 1, 'an invalid mesh: 1');
    const json = JSON.parse(execFileSync(process.execPath, [cli, 'validate', good, '-o', 'json'], { encoding: 'utf8' })) as { valid: boolean; room: { slots: number } }[];
    assert.equal(json[0]!.valid, true);
    assert.ok(json[0]!.room.slots > 0, 'table sizes read from the built object');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a Kubernetes manifest is checked by the mesh files its ConfigMaps carry, positions in the manifest', () => {
  const manifest = `apiVersion: v1
kind: Namespace
metadata: { name: mesh }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: other, namespace: mesh }
data:
  note: not a mesh
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: sockmesh-mesh
  namespace: mesh
data:
  mesh.yaml: |
    apiVersion: sockmesh.io/v1alpha1
    kind: Mesh
    network:
      vipCIDRs: [10.96.0.0/33]
    services: []
    workloads: []
`;
  const embedded = embeddedMeshes(manifest, 'deploy.yaml');
  assert.equal(embedded?.length, 1);
  const e = embedded![0]!;
  assert.ok(!('error' in e));
  assert.equal(e.label, 'deploy.yaml: ConfigMap mesh/sockmesh-mesh, mesh.yaml');
  const c = checkMesh(e.text, e.label, ROOM, { ...e.origin!, positionsIn: 'deploy.yaml' });
  assert.equal(c.valid, false);
  // Line 21 of the manifest, where "10.96.0.0/33" starts.
  const col = manifest.split('\n')[20]!.indexOf('10.96') + 1;
  assert.deepEqual(!c.valid && c.errors, [`deploy.yaml:21:${col} network.vipCIDRs[0]: bad CIDR "10.96.0.0/33": prefix must be an integer in 0..32`]);

  assert.equal(embeddedMeshes(mesh(WEB), 'mesh.yaml'), undefined, 'a mesh file is not a manifest');
  assert.deepEqual(embeddedMeshes('kind: ConfigMap\ndata: { a: b }\n', 'cm.yaml'), [], 'ConfigMaps, but no mesh in them');
  const shipped = embeddedMeshes(fs.readFileSync(path.join(repoRoot, 'daemonset', 'sockmesh.yaml'), 'utf8'), 'sockmesh.yaml')!;
  assert.deepEqual(shipped.map((x) => !('error' in x) && checkMesh(x.text, x.label, ROOM).valid), [true], 'the shipped DaemonSet\'s mesh');
});

test('a manifest: a mesh whose kind is quoted or commented is still checked; a broken document is named, not skipped', () => {
  const cm = (name: string, kindLine: string): string => `apiVersion: v1
kind: ConfigMap
metadata: { name: ${name}, namespace: mesh }
data:
  mesh.yaml: |
    apiVersion: sockmesh.io/v1alpha1
    ${kindLine}
    services: []
    workloads: []
`;
  const quoted = embeddedMeshes(`${cm('a', 'kind: "Mesh"')}---\n${cm('b', 'kind: Mesh # the mesh')}`, 'deploy.yaml')!;
  assert.deepEqual(quoted.map((x) => x.label), ['deploy.yaml: ConfigMap mesh/a, mesh.yaml', 'deploy.yaml: ConfigMap mesh/b, mesh.yaml']);
  const broken = embeddedMeshes(`${cm('a', 'kind: Mesh')}---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: x\n`, 'deploy.yaml')!;
  assert.equal(broken.length, 2);
  const bad = broken.find((x) => 'error' in x);
  assert.ok(bad && 'error' in bad && bad.label === 'deploy.yaml: document 2' && /^deploy\.yaml:1[0-9]:\d+ YAML: /.test(bad.error), JSON.stringify(bad));
  // A mesh file with a second document is a mesh file, not a manifest without ConfigMaps.
  const two = embeddedMeshes(`${mesh(WEB)}---\nfoo: 1\n`, 'mesh.yaml')!;
  assert.deepEqual(two.map((x) => 'error' in x && x.error.replace(/:\d+:\d+ /, ':L:C ')), ['mesh.yaml:L:C YAML: a mesh file is one document; mesh.yaml has 2 (`---` lines): remove the extra ones, or split the file']);
});

test('a service that would refuse every connect is valid, with a warning saying so', () => {
  const c = checkMesh(mesh(`${WEB}
  - name: empty
    vips: [10.96.0.11]
    ports: [{ port: 80 }]
    backends: []
  - name: drained
    vips: [10.96.0.12]
    ports: [{ port: 80 }]
    backends: [{ address: 10.0.0.9, weight: 0 }]`), 'mesh.yaml', ROOM);
  assert.ok(c.valid);
  assert.deepEqual(c.warnings.filter((w) => w.startsWith('service ')), [
    'service default/empty:80: no backends: connects to it are refused (ECONNREFUSED)',
    'service default/drained:80: every backend has weight 0: connects to it are refused (ECONNREFUSED)',
  ]);
});
