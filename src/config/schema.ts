/**
 * Validation of the mesh document, on plain JS values (load.ts turns YAML into
 * those and issue paths back into file positions).
 *
 * Zod checks the shape of each object (strict: an unknown field is a typo
 * until proven otherwise); leaf values go through small parsers with our own
 * messages, since a config error should say what is allowed, not which zod
 * check failed. The document is validated in parts (header, network, each
 * service, each workload) so that one broken part does not hide the errors of
 * the others, and the cross-field checks then run over every part that parsed.
 */
import { z } from 'zod';
import { quote } from './errors';
import {
  CidrSet, parseCidr, parseIp, serviceKey,
  type Backend, type Checked, type Cidr, type IpAddress, type Labels, type MeshConfig,
  type Protocol, type Service, type ServicePort, type Workload,
} from './model';

export const API_VERSION = 'sockmesh.io/v1alpha1';
export const KIND = 'Mesh';

export type PathSegment = string | number;
export type Path = readonly PathSegment[];

/** An issue before it has a file position. */
export interface PathIssue {
  readonly path: Path;
  readonly message: string;
  /** Point at the key rather than its value (unknown fields). */
  readonly atKey?: boolean;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** services[2].backends[0].weight; keys that are not plain words are quoted: labels["app.kubernetes.io/name"]. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (PLAIN_KEY.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** How a value reads in a message: strings quoted, containers by kind. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return quote(v);
  return String(v);
}

const EXPECTED: Readonly<Record<string, string>> = { object: 'a mapping', record: 'a mapping', array: 'a list', string: 'a string', number: 'a number' };

/** Messages for the structural issues zod raises itself (leaf parsers bring their own). */
export const zodMessages: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required';
      return `must be ${EXPECTED[iss.expected] ?? iss.expected}, got ${describe(iss.input)}`;
    case 'unrecognized_keys':
      return 'unknown field';
    case 'too_small':
      return iss.origin === 'array' ? `must have at least ${String(iss.minimum)} item(s)` : undefined;
    default:
      return undefined;
  }
};

/** Zod issues as PathIssues under `base`; one issue per unknown key, pointing at the key. */
export function fromZod(error: z.ZodError, base: Path = []): PathIssue[] {
  return error.issues.flatMap((iss): PathIssue[] => {
    const path = [...base, ...iss.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    if (iss.code === 'unrecognized_keys') return iss.keys.map((k) => ({ path: [...path, k], message: 'unknown field', atKey: true }));
    if (iss.code === 'invalid_key') return [{ path, message: iss.issues[0]?.message ?? iss.message, atKey: true }];
    return [{ path, message: iss.message }];
  });
}

/** Parses `input` with `schema`, reporting under `base`. */
export function parseAt<T>(schema: z.ZodType<T>, input: unknown, base: Path, issues: PathIssue[]): T | undefined {
  const r = schema.safeParse(input, { error: zodMessages });
  if (r.success) return r.data;
  issues.push(...fromZod(r.error, base).map((i) => (i.message === 'unknown field' ? withSuggestion(schema, base, i) : i)));
  return undefined;
}

/** "unknown field (did you mean weight?)": a typo of a field the object has, by edit distance. */
function withSuggestion(schema: z.ZodType, base: Path, issue: PathIssue): PathIssue {
  const key = String(issue.path[issue.path.length - 1]);
  const known = fieldsAt(schema, issue.path.slice(base.length, -1));
  const typed = key.toLowerCase();
  // A few letters off, or the start of the field (proto: protocol).
  const near = known?.map((k) => ({ k, d: typed.length >= 3 && k.toLowerCase().startsWith(typed) ? 1 : editDistance(typed, k.toLowerCase()) }))
    .filter((x) => x.d <= Math.max(1, Math.floor(key.length / 4)) + 1).sort((a, b) => a.d - b.d)[0];
  return near ? { ...issue, message: `unknown field (did you mean ${near.k}?)` } : issue;
}

/** The field names of the object at `path` within `schema` (optional, default and pipe layers looked through). */
function fieldsAt(schema: z.ZodType, path: Path): string[] | undefined {
  let t: z.core.$ZodType | undefined = schema;
  const unwrap = (x: z.core.$ZodType): z.core.$ZodType => {
    for (;;) {
      const d = x._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
      if ((d.type === 'optional' || d.type === 'default' || d.type === 'nullable') && d.innerType) x = d.innerType;
      else if (d.type === 'pipe' && d.in) x = d.in;
      else return x;
    }
  };
  for (const seg of path) {
    const d = unwrap(t)._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType };
    t = d.type === 'object' ? d.shape?.[String(seg)] : d.type === 'array' ? d.element : undefined;
    if (!t) return undefined;
  }
  const d = unwrap(t)._zod.def as { type: string; shape?: Record<string, unknown> };
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** A zod schema around one of our parsers. */
export function checked<T>(parse: (input: unknown) => Checked<T>): z.ZodType<T> {
  return z.unknown().transform((input, ctx) => {
    const r = parse(input);
    if (r.ok) return r.value;
    ctx.addIssue({ code: 'custom', message: r.reason });
    return z.NEVER;
  });
}

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(reason: string): Checked<T> => ({ ok: false, reason });

/** A string parser that first insists on a string. */
export function stringParser<T>(then: (s: string) => Checked<T>): (input: unknown) => Checked<T> {
  return (input) => {
    if (input === undefined) return bad('required');
    if (typeof input !== 'string') return bad(`must be a string, got ${describe(input)}`);
    return then(input);
  };
}

export function intIn(lo: number, hi: number): z.ZodType<number> {
  return checked((input) => (typeof input === 'number' && Number.isInteger(input) && input >= lo && input <= hi
    ? ok(input)
    : bad(input === undefined ? 'required' : `must be an integer in ${lo}..${hi}, got ${describe(input)}`)));
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A DNS-1123 label, as Kubernetes names are: lowercase alphanumerics and '-', at most 63. */
export function checkDnsLabel(s: string): Checked<string> {
  return DNS1123_LABEL.test(s) && s.length <= 63
    ? ok(s)
    : bad(`must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63), got ${quote(s)}`);
}

/**
 * A cgroup v2 path relative to the cgroup v2 mount. Relative so that it means
 * the same wherever the mount is (/sys/fs/cgroup, /sys/fs/cgroup/unified);
 * without '.', '..' or empty segments so that it cannot escape the mount and
 * two spellings cannot name one cgroup (duplicates are caught by comparing text).
 */
export function checkCgroupPath(s: string): Checked<string> {
  const q = quote(s);
  if (s === '') return bad('must not be empty');
  if (s.startsWith('/')) return bad(`must be relative to the cgroup v2 mount (no leading "/"), got ${q}`);
  if (/[\u0000-\u001f\u007f]/.test(s)) return bad(`must not contain control characters, got ${q}`);
  const segments = s.split('/');
  if (segments.some((seg) => seg === '')) return bad(`must not contain empty segments or a trailing "/", got ${q}`);
  if (segments.some((seg) => seg === '.' || seg === '..')) return bad(`must not contain "." or ".." segments, got ${q}`);
  if (segments.some((seg) => Buffer.byteLength(seg) > 255)) return bad(`has a segment longer than 255 bytes: ${q}`);
  return ok(s);
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes label key rules, so labels can come from Pods and EndpointSlices unchanged. */
function checkLabelKey(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (!DNS1123_SUBDOMAIN.test(prefix) || prefix.length > 253)) {
    return `label key prefix must be a DNS-1123 subdomain, got ${quote(key)}`;
  }
  if (!LABEL_NAME.test(name) || name.length > 63) {
    return `label key must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (optionally after "prefix/"), got ${quote(key)}`;
  }
  return undefined;
}

const LabelKey = z.string().superRefine((key, ctx) => {
  const reason = checkLabelKey(key);
  if (reason !== undefined) ctx.addIssue({ code: 'custom', message: reason });
});

const LabelValue = checked((v): Checked<string> => {
  // YAML reads `version: 2` as a number; Kubernetes refuses that too, so say how to fix it.
  if (typeof v === 'number' || typeof v === 'boolean') return bad(`label values must be strings: quote it ("${String(v)}")`);
  if (typeof v !== 'string') return bad(`label values must be strings, got ${describe(v)}`);
  return v === '' || (LABEL_NAME.test(v) && v.length <= 63)
    ? ok(v)
    : bad(`label value must be empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, got ${quote(v)}`);
});

const LabelsSchema: z.ZodType<Labels> = z.record(LabelKey, LabelValue);

const Name = checked(stringParser(checkDnsLabel));
const Namespace = Name.default('default');

/** VIPs and backends: any address a socket can connect to. */
const Address = checked(stringParser((s): Checked<IpAddress> => {
  const ip = parseIp(s);
  if (!ip.ok) return ip;
  // Text is canonical, so these are the only spellings left.
  if (ip.value.text === '0.0.0.0' || ip.value.text === '::') return bad(`${ip.value.text} is the unspecified address: a socket cannot connect to it`);
  return ip;
}));

const CidrSchema = checked(stringParser(parseCidr));

const ProtocolSchema = checked((v): Checked<Protocol> => (v === 'TCP' || v === 'UDP'
  ? ok(v)
  : bad(`must be TCP or UDP, got ${describe(v)}`)));

const Port = intIn(1, 65535);

/**
 * A backend port: a number, or (as in Kubernetes) the name of a port each
 * backend declares in its own `ports`, so one service port can reach
 * backends listening on different numbers.
 */
const TargetPort: z.ZodType<number | string> = checked((v): Checked<number | string> => {
  if (typeof v === 'string') {
    return checkDnsLabel(v).ok
      ? ok(v)
      : bad(`must be a port number 1..65535 or a port name (a DNS-1123 label: lowercase letters, digits, '-'), got ${describe(v)}`);
  }
  const port = quietly(Port, v); // the same rule as every other port
  return port !== undefined ? ok(port) : bad(`must be a port number 1..65535 or a port name, got ${describe(v)}`);
});

const PortSchema: z.ZodType<ServicePort> = z.strictObject({
  name: Name.optional(),
  port: Port,
  protocol: ProtocolSchema.default('TCP'),
  targetPort: TargetPort.optional(),
}).transform(({ name, port, protocol, targetPort }): ServicePort => ({
  ...(name === undefined ? {} : { name }),
  port,
  protocol,
  targetPort: targetPort ?? port,
}));

const BackendSchema: z.ZodType<Backend> = z.strictObject({
  address: Address,
  weight: intIn(0, 1000).default(1),
  labels: LabelsSchema.default({}),
  /** named ports of this backend, for services whose targetPort is a name */
  ports: z.record(Name, Port).default({}),
});

export const ServiceSchema: z.ZodType<Service> = z.strictObject({
  name: Name,
  namespace: Namespace,
  vips: z.array(Address).min(1, { error: 'a service needs at least one VIP' }),
  ports: z.array(PortSchema).min(1, { error: 'a service needs at least one port' }),
  backends: z.array(BackendSchema).nullish().transform((b) => b ?? []),
});

const CgroupPath = checked(stringParser(checkCgroupPath));

export const WorkloadSchema: z.ZodType<Workload> = z.strictObject({
  name: Name,
  namespace: Namespace,
  labels: LabelsSchema.default({}),
  cgroup: CgroupPath,
});

const NetworkSchema = z.strictObject({
  vipCIDRs: z.array(CidrSchema).min(1, { error: 'at least one CIDR is required: VIPs must lie inside one' }),
});

const constant = <T extends string>(value: T): z.ZodType<T> => checked((v) => (v === value
  ? ok(value)
  : bad(v === undefined ? `required: ${JSON.stringify(value)}` : `must be ${JSON.stringify(value)}, got ${describe(v)}`)));

/** The top level: its own fields checked, the big parts kept raw for parsing one by one. */
const RootSchema = z.strictObject({
  apiVersion: constant(API_VERSION),
  kind: constant(KIND),
  network: z.unknown().optional(),
  services: z.unknown().optional(),
  workloads: z.unknown().optional(),
  agent: z.unknown().optional(),
});

/** `services:` left empty (all commented out) reads as null: same as an empty list. */
const ItemList = z.array(z.unknown()).nullish().transform((l) => l ?? []);

/** Everything but the agent section, which settings.ts owns. */
export type MeshWithoutAgent = Omit<MeshConfig, 'agent'>;

export interface MeshValidation {
  /** Present when there are no issues. */
  readonly mesh?: MeshWithoutAgent;
  /** The raw `agent:` value, for the settings file layer. */
  readonly agent: unknown;
  readonly issues: PathIssue[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a parsed mesh document (minus `agent:`), collecting every issue. */
export function validateMesh(doc: unknown): MeshValidation {
  const issues: PathIssue[] = [];
  if (!isRecord(doc)) {
    return { agent: undefined, issues: [{ path: [], message: `the document must be a mapping (apiVersion: ${API_VERSION}, kind: ${KIND}, ...), got ${describe(doc)}` }] };
  }
  parseAt(RootSchema, doc, [], issues);
  const network = parseAt(NetworkSchema, doc.network, ['network'], issues);
  const services = parseList(ServiceSchema, doc.services, 'services', issues);
  const workloads = parseList(WorkloadSchema, doc.workloads, 'workloads', issues);
  // A CIDR list with a typo in it would flag the VIPs the typo was meant to cover: check against complete lists only.
  issues.push(...crossCheck(network?.vipCIDRs, listOf(doc.services).map(serviceView), listOf(doc.workloads).map(workloadView)));
  if (issues.length > 0 || !network || !services || !workloads) return { agent: doc.agent, issues };
  return { mesh: { network, services, workloads }, agent: doc.agent, issues };
}

/** Each item parsed on its own so that every broken item reports; undefined unless all parse. */
function parseList<T>(schema: z.ZodType<T>, raw: unknown, key: string, issues: PathIssue[]): T[] | undefined {
  const list = parseAt(ItemList, raw, [key], issues);
  if (!list) return undefined;
  const parsed = list.map((item, index) => parseAt(schema, item, [key, index], issues));
  return parsed.every((v): v is T => v !== undefined) ? parsed : undefined;
}

/*
 * Cross-field checks. They run over views made of every part that parses on
 * its own (a service with one bad backend still has its VIPs checked for
 * clashes), so one round of errors is the whole list. Parts that do not parse
 * were reported by the schemas above and are simply absent here.
 */

interface Indexed<T> {
  readonly index: number;
  readonly value: T;
}

interface ServiceView {
  readonly index: number;
  /** namespace/name, when both are valid. */
  readonly key: string | undefined;
  readonly vips: Indexed<IpAddress>[];
  readonly ports: Indexed<ServicePort>[];
  /** Including ports that do not parse: what "more than one port" counts. */
  readonly portCount: number;
  readonly backends: Indexed<Backend>[];
}

interface WorkloadView {
  readonly index: number;
  readonly key: string | undefined;
  readonly cgroup: string | undefined;
}

function listOf(raw: unknown): unknown[] {
  return Array.isArray(raw) ? raw : [];
}

function quietly<T>(schema: z.ZodType<T>, raw: unknown): T | undefined {
  const r = schema.safeParse(raw);
  return r.success ? r.data : undefined;
}

function quietList<T>(schema: z.ZodType<T>, raw: unknown): Indexed<T>[] {
  return listOf(raw).flatMap((item, index) => {
    const value = quietly(schema, item);
    return value === undefined ? [] : [{ index, value }];
  });
}

function keyOf(raw: Record<string, unknown>): string | undefined {
  const name = quietly(Name, raw.name);
  const namespace = quietly(Namespace, raw.namespace);
  return name === undefined || namespace === undefined ? undefined : serviceKey({ name, namespace });
}

function serviceView(raw: unknown, index: number): ServiceView {
  const r = isRecord(raw) ? raw : {};
  return {
    index,
    key: keyOf(r),
    vips: quietList(Address, r.vips),
    ports: quietList(PortSchema, r.ports),
    portCount: listOf(r.ports).length,
    backends: quietList(BackendSchema, r.backends),
  };
}

function workloadView(raw: unknown, index: number): WorkloadView {
  const r = isRecord(raw) ? raw : {};
  return { index, key: keyOf(r), cgroup: quietly(CgroupPath, r.cgroup) };
}

/** Each item whose key repeats, with the index of the key's first item; undefined keys never repeat. */
function duplicates<T>(items: readonly Indexed<T>[], key: (value: T) => string | undefined): Array<{ item: Indexed<T>; first: number }> {
  const first = new Map<string, number>();
  const out: Array<{ item: Indexed<T>; first: number }> = [];
  for (const item of items) {
    const k = key(item.value);
    if (k === undefined) continue;
    const seen = first.get(k);
    if (seen === undefined) first.set(k, item.index);
    else out.push({ item, first: seen });
  }
  return out;
}

const familyName = (f: 4 | 6): string => `IPv${f}`;

/** Rules inside one service. */
function checkService(svc: ServiceView): PathIssue[] {
  const issues: PathIssue[] = [];
  const report = (path: Path, message: string): void => { issues.push({ path: ['services', svc.index, ...path], message }); };

  for (const { item, first } of duplicates(svc.vips, (v) => v.text)) {
    report(['vips', item.index], `duplicate VIP ${item.value.text} (also vips[${first}])`);
  }
  if (svc.portCount > 1) {
    for (const p of svc.ports) {
      if (p.value.name === undefined) report(['ports', p.index, 'name'], 'required when a service has more than one port');
    }
  }
  for (const { item, first } of duplicates(svc.ports, (p) => p.name)) {
    report(['ports', item.index, 'name'], `duplicate port name ${quote(item.value.name ?? '')} (also ports[${first}])`);
  }
  for (const { item, first } of duplicates(svc.ports, (p) => `${p.port}/${p.protocol}`)) {
    report(['ports', item.index, 'port'], `duplicate port ${item.value.port}/${item.value.protocol} (also ports[${first}])`);
  }
  // A connect can only be redirected within its own family; with no valid VIP there is nothing to compare.
  const families = new Set(svc.vips.map((v) => v.value.family));
  if (families.size > 0) {
    for (const b of svc.backends) {
      const { family, text } = b.value.address;
      if (!families.has(family)) {
        report(['backends', b.index, 'address'], `${familyName(family)} backend ${text}, but the service has only ${[...families].map(familyName).join(' and ')} VIPs`);
      }
    }
  }
  // A named targetPort reaches only the backends that declare it (as in
  // Kubernetes); when backends exist and none does, it is a typo, not a plan.
  for (const p of svc.ports) {
    const t = p.value.targetPort;
    if (typeof t === 'string' && svc.backends.length > 0 && !svc.backends.some((b) => t in b.value.ports)) {
      report(['ports', p.index, 'targetPort'], `no backend declares a port named ${quote(t)} (backends[].ports)`);
    }
  }
  for (const { item, first } of duplicates(svc.backends, (b) => b.address.text)) {
    report(['backends', item.index, 'address'], `duplicate backend ${item.value.address.text} (also backends[${first}]); use weight to give it a bigger share`);
  }
  return issues;
}

/**
 * The VIP ranges themselves: no host may live in them (backends are refused
 * there), so one that covers every address is a mistake, and a repeated or
 * nested one says the file is not what its author thinks.
 */
function checkVipCidrs(cidrs: readonly Cidr[]): PathIssue[] {
  const issues: PathIssue[] = [];
  for (const [i, c] of cidrs.entries()) {
    const path = ['network', 'vipCIDRs', i];
    if (c.prefix === 0) {
      issues.push({ path, message: `${c.text} covers every IPv${c.family} address, pods and loopback included: give the range your service VIPs come from (e.g. 10.96.0.0/12)` });
      continue;
    }
    const dup = cidrs.findIndex((o, k) => k < i && o.text === c.text);
    if (dup >= 0) {
      issues.push({ path, message: `duplicate of vipCIDRs[${dup}]` });
      continue;
    }
    // Inside a wider one (a /0 is reported as such already).
    const j = cidrs.findIndex((o) => o.family === c.family && o.prefix > 0 && o.prefix < c.prefix && new CidrSet([o]).contains(c.network));
    if (j >= 0) issues.push({ path, message: `inside vipCIDRs[${j}] (${cidrs[j]!.text}): remove one of them` });
  }
  return issues;
}

/** Rules inside each service, and across services and workloads. */
function crossCheck(cidrs: readonly Cidr[] | undefined, services: readonly ServiceView[], workloads: readonly WorkloadView[]): PathIssue[] {
  const issues = [...(cidrs ? checkVipCidrs(cidrs) : []), ...services.flatMap(checkService)];

  const byKey = services.map((s) => ({ index: s.index, value: s }));
  for (const { item, first } of duplicates(byKey, (s) => s.key)) {
    issues.push({ path: ['services', item.index, 'name'], message: `duplicate service ${item.value.key ?? ''} (also services[${first}])` });
  }

  const range = cidrs && new CidrSet(cidrs);
  const vipOwner = new Map<string, { svc: ServiceView; path: string }>();
  for (const svc of services) {
    for (const { index, value: vip } of svc.vips) {
      const path = ['services', svc.index, 'vips', index];
      if (range && !range.contains(vip)) {
        issues.push({ path, message: `VIP ${vip.text} is outside every network.vipCIDRs range (${range.cidrs.map((c) => c.text).join(', ')})` });
      }
      const owner = vipOwner.get(vip.text);
      if (!owner) vipOwner.set(vip.text, { svc, path: formatPath(path) });
      // A repeat inside one service is checkService's.
      else if (owner.svc !== svc) {
        const name = owner.svc.key === undefined ? '' : `service ${owner.svc.key} `;
        issues.push({ path, message: `VIP ${vip.text} is already used by ${name}(${owner.path})` });
      }
    }
  }

  // connect4 translates once: a backend that is itself a VIP (or anywhere in
  // the VIP ranges, where no host lives) would be dialled as is and fail.
  for (const svc of services) {
    for (const { index, value: b } of svc.backends) {
      if (!range?.contains(b.address)) continue;
      const owner = vipOwner.get(b.address.text);
      const what = owner ? `the VIP of ${owner.svc.key === undefined ? owner.path : `service ${owner.svc.key}`}` : 'inside network.vipCIDRs';
      issues.push({ path: ['services', svc.index, 'backends', index, 'address'],
        message: `backend ${b.address.text} is ${what}: VIPs are translated once, at connect(), so a backend must be an endpoint (a pod address), not a VIP` });
    }
  }

  const wl = workloads.map((w) => ({ index: w.index, value: w }));
  for (const { item, first } of duplicates(wl, (w) => w.key)) {
    issues.push({ path: ['workloads', item.index, 'name'], message: `duplicate workload ${item.value.key ?? ''} (also workloads[${first}])` });
  }
  for (const { item, first } of duplicates(wl, (w) => w.cgroup)) {
    issues.push({ path: ['workloads', item.index, 'cgroup'], message: `cgroup ${item.value.cgroup ?? ''} already belongs to workloads[${first}]` });
  }
  return issues;
}
