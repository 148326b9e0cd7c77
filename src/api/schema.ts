/**
 * The API's wire types, from src/api/sockmesh.proto loaded at runtime (tsc
 * does not copy .proto files to dist/, so the path is resolved from the
 * repository root, which works from src/ and dist/ alike).
 *
 * protobufjs's reflection API is untyped (`{ [k: string]: any }`); this
 * module is the only place that touches it. Outgoing values are built from
 * the TypeScript types of src/agent/view.ts; incoming ones are decoded to
 * plain objects and validated field by field (fields.ts) into those types.
 */
import path from 'node:path';
import * as protobuf from 'protobufjs';
import { repoRoot } from '../bpf/native';
import type { AgentStatus, BackendView, ConnectionFilter, NamedRecord, ServiceView } from '../agent/view';
import type { Edge, EdgeLabels } from '../telemetry/aggregator';
import { Directory } from '../telemetry/directory';
import type { Connection } from '../telemetry/record';
import { Fields, SchemaError, strValue, u64Value } from './fields';

export const PROTO_FILE = path.join(repoRoot, 'src', 'api', 'sockmesh.proto');
const PACKAGE = 'sockmesh.v1';

// ---- the TypeScript side of the envelopes ---------------------------------

export type ApiCall =
  | { method: 'status' }
  | { method: 'listServices' }
  | { method: 'listBackends'; service: string }
  | { method: 'listEdges' }
  | { method: 'listConnections'; filter: ConnectionFilter }
  | { method: 'listOpenConnections'; filter: ConnectionFilter }
  | { method: 'follow'; filter: ConnectionFilter; replayRecent: boolean };

export interface ApiRequest {
  id: number;
  call: ApiCall;
}

/** What a server makes of a frame: a call, or what to answer instead. */
export type DecodedRequest = ApiRequest | { id: number; invalid: ApiErrorBody };

/** Error codes the agent sends (Error.Code without the prefix). */
export const SERVER_ERROR_CODES = ['bad_request', 'unknown_method', 'not_found', 'frame_too_large', 'slow_consumer', 'internal'] as const;
export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];

export interface ApiErrorBody {
  code: ServerErrorCode;
  message: string;
}

export type ApiResult =
  | { result: 'status'; status: AgentStatus }
  | { result: 'listServices'; services: ServiceView[] }
  | { result: 'listBackends'; backends: BackendView[] }
  | { result: 'listEdges'; edges: Edge[] }
  | { result: 'listConnections'; records: NamedRecord[] }
  | { result: 'listOpenConnections'; records: NamedRecord[] }
  | { result: 'subscribed' }
  | { result: 'record'; record: NamedRecord }
  | { result: 'error'; error: ApiErrorBody };

export interface ApiResponse {
  id: number;
  body: ApiResult;
}

/** What a client makes of a frame: a response, or why it is not one. */
export type DecodedResponse = ApiResponse | { id: number; invalid: string };

// ---- loading ----------------------------------------------------------------

interface Types {
  request: protobuf.Type;
  response: protobuf.Type;
}

let loaded: Types | undefined;

/** Parsed once, on first use, so importing this module costs nothing. */
function types(): Types {
  if (!loaded) {
    let root: protobuf.Root;
    try {
      root = protobuf.loadSync(PROTO_FILE);
      root.resolveAll();
    } catch (err) {
      throw new Error(`cannot load the API schema ${PROTO_FILE}: ${err instanceof Error ? err.message : String(err)}`);
    }
    loaded = { request: root.lookupType(`${PACKAGE}.Request`), response: root.lookupType(`${PACKAGE}.Response`) };
  }
  return loaded;
}

/** Fixed conversion: what fields.ts expects (uint64 as decimal strings, enums by name, defaults present). */
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, arrays: true, objects: true, oneofs: true };

/** A plain object in the shape protobufjs's fromObject() accepts. */
type Plain = Record<string, unknown>;

function encode(type: protobuf.Type, plain: Plain): Buffer {
  const bytes = type.encodeDelimited(type.fromObject(plain)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Frame (with its length prefix) -> validated top-level Fields; SchemaError if it is not the message. */
function decode(type: protobuf.Type, frame: Uint8Array, where: string): Fields {
  let obj: unknown;
  try {
    obj = type.toObject(type.decodeDelimited(frame), TO_OBJECT);
  } catch (err) {
    throw new SchemaError(`malformed ${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return Fields.of(obj, where);
}

// ---- enums --------------------------------------------------------------------

function invert<K extends string, V extends string>(m: Readonly<Record<K, V>>): Record<V, K> {
  const out = {} as Record<V, K>;
  for (const k of Object.keys(m) as K[]) out[m[k]] = k;
  return out;
}

const SIDE_TO_WIRE = { client: 'SIDE_CLIENT', server: 'SIDE_SERVER' } as const;
const SIDE_FROM_WIRE = invert(SIDE_TO_WIRE);
const DATAPLANE_TO_WIRE = { installed: 'DATAPLANE_INSTALLED', adopted: 'DATAPLANE_ADOPTED' } as const;
const DATAPLANE_FROM_WIRE = invert(DATAPLANE_TO_WIRE);
const PROTOCOL_TO_WIRE = { TCP: 'PROTOCOL_TCP', UDP: 'PROTOCOL_UDP' } as const;
const PROTOCOL_FROM_WIRE = invert(PROTOCOL_TO_WIRE);
type CloseRecord = Extract<Connection, { kind: 'close' }>;
const CAUSE_TO_WIRE: Record<CloseRecord['closeCause'], string> = {
  fin: 'CLOSE_CAUSE_FIN',
  rst_sent: 'CLOSE_CAUSE_RST_SENT',
  rst_received: 'CLOSE_CAUSE_RST_RECEIVED',
  timeout: 'CLOSE_CAUSE_TIMEOUT',
  error: 'CLOSE_CAUSE_ERROR',
};
const CAUSE_FROM_WIRE = invert(CAUSE_TO_WIRE);
const CODE_TO_WIRE = Object.fromEntries(SERVER_ERROR_CODES.map((c) => [c, `CODE_${c.toUpperCase()}`])) as Record<ServerErrorCode, string>;
const CODE_FROM_WIRE = invert(CODE_TO_WIRE);

// ---- TypeScript -> wire -------------------------------------------------------

function filterToWire(f: ConnectionFilter): Plain {
  return { workload: f.workload, service: f.service };
}

function callToWire(call: ApiCall): Plain {
  switch (call.method) {
    case 'status': return { status: {} };
    case 'listServices': return { listServices: {} };
    case 'listBackends': return { listBackends: { service: call.service } };
    case 'listEdges': return { listEdges: {} };
    case 'listConnections': return { listConnections: { filter: filterToWire(call.filter) } };
    case 'listOpenConnections': return { listOpenConnections: { filter: filterToWire(call.filter) } };
    case 'follow': return { follow: { filter: filterToWire(call.filter), replayRecent: call.replayRecent } };
  }
}

function statusToWire(s: AgentStatus): Plain {
  return {
    instance: s.instance,
    version: s.version,
    pid: s.pid,
    startedAt: s.startedAt,
    dataplane: DATAPLANE_TO_WIRE[s.dataplane],
    dataplaneChanges: s.dataplaneChanges,
    cgroup: s.cgroup,
    bpffsDir: s.bpffsDir,
    config: { file: s.config.file, appliedAt: s.config.appliedAt, rejected: s.config.rejected, warnings: s.config.warnings },
    services: s.services,
    workloads: s.workloads,
    frontends: s.frontends,
    records: s.records,
    openConnections: s.openConnections,
    edges: s.edges,
    ringbuf: s.ringbuf,
    otlp: s.otlp,
    bpfStats: s.bpfStats,
  };
}

function serviceToWire(s: ServiceView): Plain {
  return {
    ...s,
    ports: s.ports.map((p) => ({ name: p.name, port: p.port, protocol: PROTOCOL_TO_WIRE[p.protocol], ...(typeof p.targetPort === 'number' ? { targetPort: p.targetPort } : { targetPortName: p.targetPort }) })),
  };
}

function edgeToWire(e: Edge): Plain {
  return { ...e, labels: { ...e.labels, side: SIDE_TO_WIRE[e.labels.side] } };
}

export function recordToWire(r: NamedRecord): Plain {
  const base: Plain = {
    // A decimal string: fromObject turns it into a Long without going through a double.
    cookie: r.cookie.toString(),
    cgroupId: r.cgroupId,
    side: SIDE_TO_WIRE[r.side],
    family: r.family,
    local: r.local,
    remote: r.remote,
    vip: r.vip,
    serviceId: r.serviceId,
    backendId: r.backendId,
    startNs: r.startNs,
    durationNs: r.durationNs,
    bytesSent: r.bytesSent,
    bytesReceived: r.bytesReceived,
    connectUs: r.connectUs,
    srttUs: r.srttUs,
    retransmits: r.retransmits,
    // side is the record's own: not sent twice.
    labels: { workload: r.labels.workload, service: r.labels.service, backend: r.labels.backend },
    time: r.time ?? '',
  };
  switch (r.kind) {
    case 'close': return { ...base, close: { cause: CAUSE_TO_WIRE[r.closeCause], error: r.error } };
    case 'interim': return { ...base, interim: {} };
    case 'connect_failed': return { ...base, connectFailed: { error: r.error } };
  }
}

function resultToWire(body: ApiResult): Plain {
  switch (body.result) {
    case 'status': return { status: { status: statusToWire(body.status) } };
    case 'listServices': return { listServices: { services: body.services.map(serviceToWire) } };
    case 'listBackends': return { listBackends: { backends: body.backends } };
    case 'listEdges': return { listEdges: { edges: body.edges.map(edgeToWire) } };
    case 'listConnections': return { listConnections: { records: body.records.map(recordToWire) } };
    case 'listOpenConnections': return { listOpenConnections: { records: body.records.map(recordToWire) } };
    case 'subscribed': return { follow: { subscribed: {} } };
    case 'record': return { follow: { record: recordToWire(body.record) } };
    case 'error': return { error: { code: CODE_TO_WIRE[body.error.code], message: body.error.message } };
  }
}

/** One Request frame, length prefix included. */
export function encodeRequest(req: ApiRequest): Buffer {
  return encode(types().request, { id: req.id, ...callToWire(req.call) });
}

/** One Response frame, length prefix included. */
export function encodeResponse(res: ApiResponse): Buffer {
  return encode(types().response, { id: res.id, ...resultToWire(res.body) });
}

// ---- wire -> TypeScript --------------------------------------------------------

function filterFromWire(f: Fields | undefined): ConnectionFilter {
  const out: ConnectionFilter = {};
  // An empty string filters nothing, same as unset.
  const workload = f?.optStr('workload');
  const service = f?.optStr('service');
  if (workload) out.workload = workload;
  if (service) out.service = service;
  return out;
}

/** Never throws: an undecodable frame becomes an answer for id 0 (the id is unknown). */
export function decodeRequest(frame: Uint8Array): DecodedRequest {
  let f: Fields;
  let id = 0;
  try {
    f = decode(types().request, frame, 'request');
    id = f.num('id');
  } catch (err) {
    return { id, invalid: { code: 'bad_request', message: err instanceof Error ? err.message : String(err) } };
  }
  // 0 is the agent's for errors it cannot tie to a request: an answer with it would end the client's connection.
  if (id === 0) return { id, invalid: { code: 'bad_request', message: 'request id 0 is reserved (for errors not tied to a request): number requests from 1' } };
  try {
    const which = f.oneof('method');
    switch (which) {
      case 'status': return { id, call: { method: 'status' } };
      case 'listServices': return { id, call: { method: 'listServices' } };
      case 'listBackends': {
        const service = f.msg('listBackends').str('service');
        if (!service) return { id, invalid: { code: 'bad_request', message: 'listBackends.service is required: NAMESPACE/NAME' } };
        return { id, call: { method: 'listBackends', service } };
      }
      case 'listEdges': return { id, call: { method: 'listEdges' } };
      case 'listConnections':
        return { id, call: { method: 'listConnections', filter: filterFromWire(f.msg('listConnections').optMsg('filter')) } };
      case 'listOpenConnections':
        return { id, call: { method: 'listOpenConnections', filter: filterFromWire(f.msg('listOpenConnections').optMsg('filter')) } };
      case 'follow': {
        const m = f.msg('follow');
        return { id, call: { method: 'follow', filter: filterFromWire(m.optMsg('filter')), replayRecent: m.bool('replayRecent') } };
      }
      default:
        // A field number this schema lacks decodes as no method at all.
        return { id, invalid: { code: 'unknown_method', message: 'request names no method this agent implements (is the CLI newer than the agent?)' } };
    }
  } catch (err) {
    return { id, invalid: { code: 'bad_request', message: err instanceof Error ? err.message : String(err) } };
  }
}

function statusFromWire(f: Fields): AgentStatus {
  const config = f.msg('config');
  const rejected = config.optMsg('rejected');
  const ringbuf = f.msg('ringbuf');
  const otlp = f.optMsg('otlp');
  const appliedAt = config.optStr('appliedAt');
  const status: AgentStatus = {
    instance: f.str('instance'),
    version: f.str('version'),
    pid: f.num('pid'),
    startedAt: f.str('startedAt'),
    dataplane: f.enm('dataplane', DATAPLANE_FROM_WIRE),
    dataplaneChanges: f.strs('dataplaneChanges'),
    cgroup: f.str('cgroup'),
    bpffsDir: f.str('bpffsDir'),
    config: { file: config.str('file'), warnings: config.strs('warnings') },
    services: f.u64('services'),
    frontends: f.u64('frontends'),
    records: f.u64('records'),
    openConnections: f.u64('openConnections'),
    ringbuf: { records: ringbuf.u64('records'), dropped: ringbuf.u64('dropped'), decodeErrors: ringbuf.u64('decodeErrors') },
  };
  if (appliedAt !== undefined) status.config.appliedAt = appliedAt;
  if (rejected) status.config.rejected = { at: rejected.str('at'), errors: rejected.strs('errors') };
  if (otlp) {
    status.otlp = { endpoint: otlp.str('endpoint'), exported: otlp.u64('exported'), failed: otlp.u64('failed'), dropped: otlp.u64('dropped') };
  }
  const workloads = f.optU64('workloads');
  if (workloads !== undefined) status.workloads = workloads;
  const edges = f.optMsg('edges');
  if (edges) {
    status.edges = { live: edges.u64('live'), expired: edges.u64('expired'), ttlMs: edges.u64('ttlMs') };
    const unattributed = edges.optU64('unattributed');
    if (unattributed !== undefined) status.edges.unattributed = unattributed;
  }
  const stats = f.optMsg('bpfStats');
  if (stats) {
    status.bpfStats = {
      since: stats.str('since'),
      programs: stats.msgs('programs', (p) => ({ hook: p.str('hook'), runs: p.u64('runs'), runNs: p.u64('runNs') })),
    };
  }
  return status;
}

function serviceFromWire(f: Fields): ServiceView {
  return {
    name: f.str('name'),
    namespace: f.str('namespace'),
    ports: f.msgs('ports', (p) => ({
      name: p.str('name'),
      port: p.num('port'),
      protocol: p.enm('protocol', PROTOCOL_FROM_WIRE),
      targetPort: p.str('targetPortName') || p.num('targetPort'),
    })),
    vips: f.strs('vips'),
    backends: f.num('backends'),
    verdicts: f.map('verdicts', u64Value),
  };
}

function backendFromWire(f: Fields): BackendView {
  return {
    service: f.str('service'),
    port: f.str('port'),
    endpoint: f.str('endpoint'),
    weight: f.num('weight'),
    labels: f.map('labels', strValue),
    share: f.num('share'),
    connections: f.u64('connections'),
    failed: f.u64('failed'),
    recent: f.num('recent'),
    recentOf: f.num('recentOf'),
  };
}

function edgeFromWire(f: Fields): Edge {
  const l = f.msg('labels');
  return {
    key: f.str('key'),
    labels: { side: l.enm('side', SIDE_FROM_WIRE), workload: l.str('workload'), service: l.str('service'), backend: l.str('backend') },
    opened: f.u64('opened'),
    closed: f.u64('closed'),
    failed: f.u64('failed'),
    bytesSent: f.u64('bytesSent'),
    bytesReceived: f.u64('bytesReceived'),
    retransmits: f.u64('retransmits'),
    resetsSent: f.u64('resetsSent'),
    resetsReceived: f.u64('resetsReceived'),
    timeouts: f.u64('timeouts'),
    connectUsSum: f.u64('connectUsSum'),
    connectUsCount: f.u64('connectUsCount'),
    srttUsSum: f.u64('srttUsSum'),
    srttUsCount: f.u64('srttUsCount'),
    lastSeenMs: f.u64('lastSeenMs'),
  };
}

function addrFromWire(f: Fields): { address: string; port: number } {
  return { address: f.str('address'), port: f.num('port') };
}

/**
 * A record's names. Unset only from an agent older than the field: then the
 * workload is unknown, and so is every non-zero id ('' for zero, as the agent
 * itself labels non-service traffic).
 */
function recordLabelsFromWire(l: Fields | undefined, side: EdgeLabels['side'], serviceId: number, backendId: number): EdgeLabels {
  if (!l) {
    const unnamed = (id: number): string => (id === 0 ? '' : Directory.UNKNOWN);
    return { side, workload: Directory.UNKNOWN, service: unnamed(serviceId), backend: unnamed(backendId) };
  }
  return { side, workload: l.str('workload'), service: l.str('service'), backend: l.str('backend') };
}

export function recordFromWire(f: Fields): NamedRecord {
  const n = f.num('family');
  if (n !== 4 && n !== 6) throw new SchemaError(`${f.where}.family: expected 4 or 6, got ${n}`);
  const family: 4 | 6 = n === 4 ? 4 : 6;
  const srtt = f.msg('srttUs');
  const vip = f.optMsg('vip');
  const side = f.enm('side', SIDE_FROM_WIRE);
  const serviceId = f.num('serviceId');
  const backendId = f.num('backendId');
  const base = {
    cookie: f.u64n('cookie'),
    cgroupId: f.u64('cgroupId'),
    side,
    family,
    local: addrFromWire(f.msg('local')),
    remote: addrFromWire(f.msg('remote')),
    ...(vip ? { vip: addrFromWire(vip) } : {}),
    serviceId,
    backendId,
    startNs: f.u64('startNs'),
    durationNs: f.u64('durationNs'),
    bytesSent: f.u64('bytesSent'),
    bytesReceived: f.u64('bytesReceived'),
    connectUs: f.num('connectUs'),
    srttUs: { last: srtt.num('last'), min: srtt.num('min'), max: srtt.num('max') },
    retransmits: f.num('retransmits'),
  };
  const labels = recordLabelsFromWire(f.optMsg('labels'), side, serviceId, backendId);
  const t = f.str('time');
  const time = t ? { time: t } : {};
  // labels and time last, as the agent's records have them (json/yaml print keys in this order)
  switch (f.oneof('kind')) {
    case 'close': {
      const c = f.msg('close');
      return { ...base, kind: 'close', closeCause: c.enm('cause', CAUSE_FROM_WIRE), error: c.num('error'), labels, ...time };
    }
    case 'interim': return { ...base, kind: 'interim', labels, ...time };
    case 'connectFailed': return { ...base, kind: 'connect_failed', error: f.msg('connectFailed').num('error'), labels, ...time };
    default: throw new SchemaError(`${f.where}: record has no kind`);
  }
}

function resultFromWire(f: Fields): ApiResult {
  switch (f.oneof('result')) {
    case 'status': return { result: 'status', status: statusFromWire(f.msg('status').msg('status')) };
    case 'listServices': return { result: 'listServices', services: f.msg('listServices').msgs('services', serviceFromWire) };
    case 'listBackends': return { result: 'listBackends', backends: f.msg('listBackends').msgs('backends', backendFromWire) };
    case 'listEdges': return { result: 'listEdges', edges: f.msg('listEdges').msgs('edges', edgeFromWire) };
    case 'listConnections': return { result: 'listConnections', records: f.msg('listConnections').msgs('records', recordFromWire) };
    case 'listOpenConnections': return { result: 'listOpenConnections', records: f.msg('listOpenConnections').msgs('records', recordFromWire) };
    case 'follow': {
      const m = f.msg('follow');
      switch (m.oneof('event')) {
        case 'subscribed': return { result: 'subscribed' };
        case 'record': return { result: 'record', record: recordFromWire(m.msg('record')) };
        default: throw new SchemaError('response.follow: no event set');
      }
    }
    case 'error': {
      const e = f.msg('error');
      // An error code newer than this client is still an error: keep its message.
      const code = e.enmOr<ServerErrorCode>('code', CODE_FROM_WIRE, 'internal');
      return { result: 'error', error: { code, message: e.str('message') } };
    }
    default: throw new SchemaError('response carries no result this client understands (is the agent newer than the CLI?)');
  }
}

/** Never throws: what cannot be decoded says why, with the id when it was readable. */
export function decodeResponse(frame: Uint8Array): DecodedResponse {
  let id = 0;
  try {
    const f = decode(types().response, frame, 'response');
    id = f.num('id');
    return { id, body: resultFromWire(f) };
  } catch (err) {
    return { id, invalid: err instanceof Error ? err.message : String(err) };
  }
}
