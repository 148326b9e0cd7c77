/**
 * A fake AgentView: plain data, records named the way the agent names them
 * (the real Aggregator.labelsOf over a fixed Directory), a filter that behaves
 * like the agent's (on those names), and a push() to feed followers. Shared by
 * the API and CLI render tests so both see the same, field-complete values.
 */
import type { AgentStatus, AgentView, BackendView, ConnectionFilter, NamedRecord, ServiceView } from '../../../src/agent/view';
import { Aggregator, Edge, EdgeLabels } from '../../../src/telemetry/aggregator';
import { Directory } from '../../../src/telemetry/directory';
import type { Connection } from '../../../src/telemetry/record';
import { whole } from '../../helpers/records';

export const STATUS: AgentStatus = {
  instance: 'default',
  version: '0.1.0',
  pid: 4242,
  startedAt: '2024-05-01T10:00:00.000Z',
  dataplane: 'adopted',
  dataplaneChanges: ['map events: drain (definition changed: maxEntries 4194304 -> 8388608)', 'hook getpeername6: attached (not pinned before)'],
  cgroup: '/sys/fs/cgroup',
  bpffsDir: '/sys/fs/bpf/sockmesh/default',
  config: {
    file: '/etc/sockmesh/mesh.yaml',
    appliedAt: '2024-05-01T10:00:01.000Z',
    rejected: { at: '2024-05-01T11:00:00.000Z', errors: ['services[0].ports[0].port: must be 1..65535', 'backends: duplicate endpoint'] },
    warnings: ['workload cgroup kubepods/x is outside the cgroup root sockmesh: not enrolled (no VIPs, no telemetry)'],
  },
  services: 2,
  workloads: 5,
  frontends: 3,
  records: 123_456,
  openConnections: 7,
  edges: { live: 12, expired: 3, ttlMs: 600_000, unattributed: 2 },
  ringbuf: { records: 123_460, dropped: 3, decodeErrors: 1 },
  otlp: { endpoint: 'http://collector:4317', exported: 100, failed: 2, dropped: 0 },
  bpfStats: {
    since: '2024-05-01T10:00:00.000Z',
    programs: [
      { hook: 'connect4', runs: 100_000_000, runNs: 110_000_000_000 },
      { hook: 'sockops', runs: 2_000_000_000, runNs: 296_000_000_000 },
      { hook: 'sendmsg4', runs: 0, runNs: 0 },
    ],
  },
};

/** The same agent with every optional part unset. */
export const STATUS_MINIMAL: AgentStatus = (() => {
  const s: AgentStatus = { ...STATUS, dataplane: 'installed', dataplaneChanges: [], config: { file: '/etc/sockmesh/mesh.yaml', warnings: [] } };
  delete s.otlp;
  delete s.bpfStats;
  delete s.edges; // as from an agent older than the field
  return s;
})();

export const SERVICES: ServiceView[] = [
  {
    name: 'default/web',
    namespace: 'default',
    ports: [
      { name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 },
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
      { name: 'admin', port: 81, protocol: 'TCP', targetPort: 'admin' },
    ],
    vips: ['10.96.0.10', 'fd00::10'],
    backends: 3,
    verdicts: { rewritten: 1200, no_backend: 4 },
  },
  { name: 'shop/cart', namespace: 'shop', ports: [], vips: [], backends: 0, verdicts: {} },
];

export const BACKENDS: Record<string, BackendView[]> = {
  'default/web': [
    { service: 'default/web', port: 'http', endpoint: '10.0.0.1:8080', weight: 2, labels: { zone: 'a', version: 'v2' }, share: 2 / 3, connections: 1000, failed: 3, recent: 150, recentOf: 200 },
    { service: 'default/web', port: 'http', endpoint: '[fd00::2]:8080', weight: 1, labels: {}, share: 1 / 3, connections: 500, failed: 0, recent: 50, recentOf: 200 },
  ],
  'shop/cart': [],
};

export const EDGES: Edge[] = [
  {
    key: 'client|default/client|default/web:http|10.0.0.1:8080',
    labels: { side: 'client', workload: 'default/client', service: 'default/web:http', backend: '10.0.0.1:8080' },
    opened: 10, closed: 9, failed: 1, bytesSent: 4096, bytesReceived: 1 << 20, retransmits: 2, resetsSent: 1, resetsReceived: 0,
    timeouts: 0, connectUsSum: 1500, connectUsCount: 10, srttUsSum: 900, srttUsCount: 9, lastSeenMs: 1_714_557_600_000,
  },
  {
    key: 'server|default/web|default/web:http|10.0.0.1:8080',
    labels: { side: 'server', workload: 'default/web', service: 'default/web:http', backend: '10.0.0.1:8080' },
    opened: 9, closed: 9, failed: 0, bytesSent: 1 << 20, bytesReceived: 4096, retransmits: 0, resetsSent: 0, resetsReceived: 1,
    timeouts: 0, connectUsSum: 0, connectUsCount: 0, srttUsSum: 810, srttUsCount: 9, lastSeenMs: 1_714_557_600_000,
  },
  {
    key: 'client|shop/cart|default/web:http|[fd00::2]:8080',
    labels: { side: 'client', workload: 'shop/cart', service: 'default/web:http', backend: '[fd00::2]:8080' },
    opened: 3, closed: 0, failed: 0, bytesSent: 10, bytesReceived: 20, retransmits: 0, resetsSent: 0, resetsReceived: 0,
    timeouts: 0, connectUsSum: 60, connectUsCount: 3, srttUsSum: 0, srttUsCount: 0, lastSeenMs: 1_714_557_590_000,
  },
];

/**
 * The names the fake agent knows: cgroup 1001 is default/client, 1002
 * shop/cart; service id 7 is default/web's http port, backend id 3 its
 * 10.0.0.1:8080. Anything else is 'unknown' (0: none).
 */
export const DIRECTORY: Directory = (() => {
  const d = new Directory();
  d.workloads.set(1001, { namespace: 'default', name: 'client' });
  d.workloads.set(1002, { namespace: 'shop', name: 'cart' });
  d.services.set(7, { service: 'default/web', portName: 'http' });
  d.addBackend(3, { endpoint: '10.0.0.1:8080', labels: { zone: 'a' }, serviceId: 7 });
  return d;
})();

const namer = new Aggregator(DIRECTORY);

/** `r` as the agent delivers it: with the labels of its ids, computed from them now. */
/** When the fake agent says each record happened. */
export const RECORD_TIME = '2024-05-01T10:00:01.250Z';

export function named(r: Connection): NamedRecord {
  return { ...r, labels: namer.labelsOf(whole(r)), time: RECORD_TIME };
}

/** The labels of record(i) and its variants below: a client of default/web through 10.0.0.1:8080. */
export const CLIENT_LABELS: EdgeLabels = { side: 'client', workload: 'default/client', service: 'default/web:http', backend: '10.0.0.1:8080' };

const base = {
  cgroupId: 1001,
  side: 'client',
  family: 4,
  local: { address: '10.0.0.9', port: 40000 },
  remote: { address: '10.0.0.1', port: 8080 },
  vip: { address: '10.96.0.10', port: 80 },
  serviceId: 7,
  backendId: 3,
  startNs: 1_000_000_000,
  durationNs: 1_500_000_000,
  bytesSent: 2048,
  bytesReceived: 3 * 1024 * 1024,
  connectUs: 150,
  srttUs: { last: 80, min: 50, max: 200 },
  retransmits: 1,
} as const;

type CloseRecord = Extract<Connection, { kind: 'close' }>;

/** A closed client connection; cookies near 2^64, which must survive the wire and the renderers exactly. */
export function record(i: number): CloseRecord {
  return { ...base, cookie: 0xffff_ffff_ffff_ff00n + BigInt(i), kind: 'close', closeCause: 'fin', error: 0 };
}

/** The same connection still open (an interim record). */
export function interim(i: number): Connection {
  const { closeCause: _c, error: _e, ...rest } = record(i);
  return { ...rest, kind: 'interim' };
}

/** A client connect that failed with errno `error`. */
export function failed(i: number, error: number): Connection {
  const { closeCause: _c, ...rest } = record(i);
  return { ...rest, kind: 'connect_failed', error, bytesSent: 0, bytesReceived: 0, durationNs: 0 };
}

export const RECORDS: Connection[] = [
  record(1),
  { ...record(2), closeCause: 'rst_received', error: 104 },
  {
    cookie: 3n, cgroupId: 1002, side: 'server', family: 6, local: { address: 'fd00::2', port: 8080 }, remote: { address: 'fd00::9', port: 51000 },
    serviceId: 0, backendId: 0, startNs: 5, durationNs: 750, bytesSent: 0, bytesReceived: 10, connectUs: 0, srttUs: { last: 0, min: 0, max: 0 },
    retransmits: 0, kind: 'interim',
  },
  failed(4, 111),
];

/** RECORDS as the view (and so the API) delivers them. */
export const NAMED_RECORDS: NamedRecord[] = RECORDS.map(named);

/** The agent's semantics: workload "ns/name" or a bare name in any namespace; service "ns/name" (bare: default/), any port. */
function matches(f: ConnectionFilter, l: EdgeLabels): boolean {
  if (f.workload !== undefined && l.workload !== f.workload && !(!f.workload.includes('/') && l.workload.endsWith(`/${f.workload}`))) return false;
  if (f.service !== undefined && !l.service.startsWith(`${f.service.includes('/') ? f.service : `default/${f.service}`}:`)) return false;
  return true;
}

export interface FakeView extends AgentView {
  /** what the agent keeps: records without names, named when delivered */
  records: Connection[];
  /** every filter the server passed in, in order */
  filters: ConnectionFilter[];
  followers: Set<{ filter: ConnectionFilter; fn: (r: NamedRecord) => void }>;
  statusValue: AgentStatus;
  /** the next call to any method throws this, once */
  failNext?: Error;
  /** new record: into the recent list (if closed/failed) and to every matching follower */
  push(r: Connection): void;
}

export function fakeView(): FakeView {
  const v: FakeView = {
    records: [...RECORDS],
    filters: [],
    followers: new Set(),
    statusValue: STATUS,
    status() {
      return take(v) ?? v.statusValue;
    },
    services() {
      return take(v) ?? SERVICES;
    },
    backends(service) {
      return take(v) ?? BACKENDS[service];
    },
    edges() {
      return take(v) ?? EDGES;
    },
    connections(filter) {
      v.filters.push(filter);
      return take(v) ?? v.records.map(named).filter((r) => matches(filter, r.labels));
    },
    openConnections(filter) {
      v.filters.push(filter);
      return take(v) ?? v.records.filter((r) => r.kind === 'interim').map(named).filter((r) => matches(filter, r.labels));
    },
    follow(filter, fn) {
      v.filters.push(filter);
      const sub = { filter, fn };
      v.followers.add(sub);
      return () => v.followers.delete(sub);
    },
    push(r) {
      if (r.kind !== 'interim') v.records.push(r);
      const n = named(r);
      for (const s of v.followers) if (matches(s.filter, n.labels)) s.fn(n);
    },
  };
  return v;
}

/** Throws (and clears) failNext if set; typed `undefined` so `take(v) ?? value` reads naturally. */
function take(v: FakeView): undefined {
  const err = v.failNext;
  if (err) {
    delete v.failNext;
    throw err;
  }
  return undefined;
}
