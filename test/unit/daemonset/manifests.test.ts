/**
 * The Kubernetes manifests against the code they configure: the mesh file in
 * the ConfigMap must validate, the agent's args must be flags it has, the
 * probes must hit its endpoints, and every metric an alert names must be one
 * the agent exports.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../../src/bpf/native';
import { buildProgram } from '../../../src/cli/main';
import { parseMesh } from '../../../src/config/load';
import { mergeSettings } from '../../../src/config/settings';
import { PrometheusExporter } from '../../../src/exporters/prometheus';
import { Aggregator } from '../../../src/telemetry/aggregator';
import { Directory } from '../../../src/telemetry/directory';
import type { Connection } from '../../../src/telemetry/record';
import { VERSION } from '../../../src/version';
import { whole } from '../../helpers/records';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function docs(file: string): Obj[] {
  return parseAllDocuments(fs.readFileSync(path.join(repoRoot, 'daemonset', file), 'utf8')).map((d) => obj(d.toJS()));
}

const manifests = docs('sockmesh.yaml');
const daemonset = manifests.find((d) => d.kind === 'DaemonSet')!;
const podSpec = obj(obj(obj(daemonset.spec).template).spec);
const container = obj(list(podSpec.containers)[0]);

test('the mesh file in the ConfigMap is valid, and so are its agent settings', () => {
  const cm = manifests.find((d) => d.kind === 'ConfigMap')!;
  const text = String(obj(cm.data)['mesh.yaml']);
  const parsed = parseMesh(text, 'configmap:mesh.yaml');
  assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.issues));
  const merged = mergeSettings({ flags: {}, env: {}, file: parsed.agentLayer });
  assert.ok(merged.ok);
  const port = list(container.ports).map(obj).find((p) => p.name === 'metrics')!;
  assert.equal(port.containerPort, merged.settings.metricsAddress.port, 'the metrics port the probes use is where the agent listens');
});

test('the agent args are flags the agent command has', () => {
  const args = list(container.args).map(String);
  assert.equal(args[0], 'agent');
  const agent = buildProgram().commands.find((c) => c.name() === 'agent')!;
  const known = new Set(agent.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)));
  for (const a of args.slice(1).filter((x) => x.startsWith('-'))) assert.ok(known.has(a), `unknown flag ${a}`);
});

test('a rollout never runs two agents on a node, and their instance locks are the host\'s', () => {
  const rolling = obj(obj(obj(daemonset.spec).updateStrategy).rollingUpdate);
  // A surge pod would find the instance taken and exit until the old pod is gone.
  assert.equal(rolling.maxSurge, 0);
  assert.ok(sharesRunDir(podSpec, container), 'the locks live in /run/sockmesh/locks: shared with the host, or each pod locks its own');
});

/** /run/sockmesh (where the instance locks live) mounted from the host's /run/sockmesh. */
function sharesRunDir(spec: Obj, c: Obj): boolean {
  const mount = list(c.volumeMounts).map(obj).find((m) => m.mountPath === '/run/sockmesh');
  const vol = list(spec.volumes).map(obj).find((v) => v.name === mount?.name);
  return obj(vol?.hostPath).path === '/run/sockmesh';
}

test('probes hit /healthz and /readyz; bpffs is shared with the host both ways', () => {
  assert.equal(obj(obj(container.livenessProbe).httpGet).path, '/healthz');
  assert.equal(obj(obj(container.readinessProbe).httpGet).path, '/readyz');
  const mounts = list(container.volumeMounts).map(obj);
  const bpffs = mounts.find((m) => m.mountPath === '/sys/fs/bpf');
  assert.equal(bpffs?.mountPropagation, 'Bidirectional', 'pins must outlive the pod on the host');
  assert.ok(mounts.some((m) => m.mountPath === '/sys/fs/cgroup'));
  const caps = list(obj(obj(container.securityContext).capabilities).add).map(String);
  for (const c of ['BPF', 'PERFMON', 'NET_ADMIN', 'SYS_ADMIN']) assert.ok(caps.includes(c), c);
});

test('the uninstall DaemonSet removes the agent\'s instance, from the host\'s bpffs, behind the agent\'s lock', () => {
  const ds = docs('uninstall.yaml').find((d) => d.kind === 'DaemonSet')!;
  const spec = obj(obj(obj(ds.spec).template).spec);
  const init = obj(list(spec.initContainers)[0]);
  const args = list(init.args).map(String);
  assert.deepEqual(args.slice(0, 2), ['agent', '--uninstall']);
  const agent = buildProgram().commands.find((c) => c.name() === 'agent')!;
  const known = new Set(agent.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)));
  for (const a of args.slice(1).filter((x) => x.startsWith('-'))) assert.ok(known.has(a), `unknown flag ${a}`);
  const instanceOf = (a: string[]): string | undefined => a[a.indexOf('--instance') + 1];
  assert.equal(instanceOf(args), instanceOf(list(container.args).map(String)), 'the instance the agent DaemonSet runs');
  assert.ok(sharesRunDir(spec, init), 'it honours the agent\'s lock: the same lock directory');
  const bpffs = list(init.volumeMounts).map(obj).find((m) => m.mountPath === '/sys/fs/bpf');
  assert.equal(bpffs?.mountPropagation, 'Bidirectional', 'unpins on the host, not in a private copy');
  const caps = list(obj(obj(init.securityContext).capabilities).add).map(String);
  for (const c of ['BPF', 'SYS_ADMIN']) assert.ok(caps.includes(c), c);
});

test('every metric the alert rules name is one the agent exports', async () => {
  const agg = new Aggregator(new Directory());
  const prom = new PrometheusExporter({ defaultMetrics: false });
  prom.attach(agg);
  prom.setAgentCollector(() => ({
    records: 1, ringDropped: 0, decodeErrors: 0, openConnections: 0, services: 1, workloads: 1, configRejected: false,
    otlp: { endpoint: 'http://127.0.0.1:4317', exported: 0, failed: 0, dropped: 0 },
    verdicts: [{ service: 'default/web:http', verdict: 'no_backend', count: 1 }],
    programs: [{ hook: 'connect4', runs: 10, runNs: 5000 }],
  }));
  const rec: Connection = {
    kind: 'close', closeCause: 'fin', error: 0, cookie: 1n, cgroupId: 1, side: 'client', family: 4,
    local: { address: '10.0.0.1', port: 40000 }, remote: { address: '10.0.0.2', port: 80 }, serviceId: 0, backendId: 0,
    startNs: 1, durationNs: 1000, bytesSent: 1, bytesReceived: 1, connectUs: 10, srttUs: { last: 10, min: 10, max: 10 }, retransmits: 0,
  };
  agg.ingest(whole(rec));
  await prom.metrics(); // new series show 0 in their first scrape
  const text = await prom.metrics();
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const rules = list(obj(docs('alerts.yaml')[0]!.spec).groups).flatMap((g) => list(obj(g).rules)).map(obj);
  assert.ok(rules.length > 0);
  for (const r of rules) {
    for (const [name] of String(r.expr).matchAll(/sockmesh_[a-z_]+/g)) {
      const family = name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(exported.has(family), `alert ${String(r.alert)} uses ${name}, which the agent does not export`);
    }
  }
  assert.match(text, /sockmesh_connect_verdicts_total\{service="default\/web:http",verdict="no_backend"\} 1/, 'the verdict label value the alert matches');
});

test('both DaemonSets and the Dockerfile name the image of this version', () => {
  const images = [daemonset, ...docs('uninstall.yaml').filter((d) => d.kind === 'DaemonSet')].flatMap((d) => {
    const spec = obj(obj(obj(d.spec).template).spec);
    return [...list(spec.initContainers), ...list(spec.containers)].map((c) => String(obj(c).image));
  }).filter((i) => i.startsWith('sockmesh/'));
  assert.equal(images.length, 2, 'the agent, and the uninstall init container');
  assert.deepEqual(images, images.map(() => `sockmesh/agent:${VERSION}`));
  assert.match(fs.readFileSync(path.join(repoRoot, 'daemonset', 'Dockerfile'), 'utf8'), new RegExp(`sockmesh/agent:${VERSION.replace(/\./g, '\\.')}\\b`));
});
