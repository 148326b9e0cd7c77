/**
 * The mesh as the agent sees it, after validation. The shapes mirror
 * Kubernetes Service (name, namespace, VIPs, ports), EndpointSlice (backend
 * addresses, weights standing in for endpoint conditions) and Pod (workload
 * labels) so that a Kubernetes source can produce the same MeshConfig as a
 * YAML file does, and everything downstream (compiler, map writer) has one
 * input to handle.
 *
 * Addresses are parsed once, here, into the 16-byte form the BPF maps use;
 * nothing downstream should parse address text again.
 */
import net from 'node:net';
import { quote } from './errors';

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  /** Canonical text: dotted quad, or RFC 5952 for IPv6 (lowercase, longest zero run as ::). */
  readonly text: string;
  /** 16 bytes: the IPv6 address, or ::ffff:a.b.c.d for IPv4 (how the BPF maps key both families). */
  readonly bytes: Buffer;
}

export interface Cidr {
  readonly family: IpFamily;
  /** Canonical "network/prefix". */
  readonly text: string;
  /** The network address (host bits are always zero: such CIDRs are rejected). */
  readonly network: IpAddress;
  readonly prefix: number;
}

export type Protocol = 'TCP' | 'UDP';

export type Labels = Readonly<Record<string, string>>;

export interface ServicePort {
  /** Required (and unique) when the service has more than one port, as in Kubernetes. */
  readonly name?: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** The backends' port, or the name of a port each backend declares; defaults to `port`. */
  readonly targetPort: number | string;
}

export interface Backend {
  readonly address: IpAddress;
  /** 0..1000; 0 drains the backend: kept (its connections stay visible) but picked for nothing new. */
  readonly weight: number;
  readonly labels: Labels;
  /** Named ports, for service ports whose targetPort is a name. */
  readonly ports: Readonly<Record<string, number>>;
}

export interface Service {
  readonly name: string;
  readonly namespace: string;
  /** At least one; IPv4 and/or IPv6, each inside one of network.vipCIDRs. */
  readonly vips: readonly IpAddress[];
  readonly ports: readonly ServicePort[];
  /** May be empty: connects to the service then fail with ECONNREFUSED in the kernel. */
  readonly backends: readonly Backend[];
}

export interface Workload {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  /** cgroup v2 path relative to the cgroup v2 mount, e.g. "sockmesh-demo/frontend". */
  readonly cgroup: string;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface HostPort {
  /** An IPv4 address, an IPv6 address (without brackets) or a host name. */
  readonly host: string;
  readonly port: number;
}

/** The agent's own knobs: see settings.ts for where each comes from. */
export interface AgentSettings {
  /** Names this agent's pins, socket and metrics; lets two agents share a node in tests. */
  readonly instance: string;
  /** Absolute bpffs directory for pinned maps and links. */
  readonly bpffsDir: string;
  /** cgroup v2 path (relative to the mount) where the programs attach; workloads must live below it. */
  readonly cgroupRoot: string;
  readonly metricsAddress: HostPort;
  /** Absolute path of the local API's unix socket. */
  readonly apiSocket: string;
  /** OTLP/gRPC collector URL; no trace export when absent. */
  readonly otlpEndpoint?: string;
  readonly reportIntervalMs: number;
  /**
   * An edge (workload -> service -> backend) with no record for this long is
   * dropped, with its /metrics series: backends come and go with their pods,
   * and their series must not pile up. Open connections report every
   * interval, so only edges without one expire. 0: keep every edge.
   */
  readonly edgeTtlMs: number;
  /**
   * 'all': a sockops callback on every RTT sample, so SRTT min/max are exact
   * (about 130 ns per ACK that carries a sample). 'none': SRTT is read from
   * the socket at each report and at close only; min/max span those reads.
   */
  readonly rttSamples: RttSamples;
  /**
   * Bytes of the ring buffer that carries connection records to the agent (a
   * power of two). Records that find it full are dropped and counted
   * (sockmesh_ring_dropped_total): raise it on busy nodes. A change takes
   * effect at the agent's next start, without a gap in traffic.
   */
  readonly ringBytes: number;
  /**
   * 'on': the kernel counts each mesh program's runs and run time while the
   * agent runs (BPF_ENABLE_STATS), exported as sockmesh_bpf_program_*. The
   * accounting reads the clock twice per run of every BPF program of the
   * machine, not only the mesh's. 'off' (default): no such series.
   */
  readonly bpfStats: BpfStats;
  readonly logLevel: LogLevel;
}

export type RttSamples = 'all' | 'none';
export type BpfStats = 'on' | 'off';

export interface MeshConfig {
  readonly network: { readonly vipCIDRs: readonly Cidr[] };
  readonly services: readonly Service[];
  readonly workloads: readonly Workload[];
  /** The mesh file's `agent:` section: the file layer of the agent settings. */
  readonly agent: Partial<AgentSettings>;
}

/** One address the kernel intercepts for a service: what a client connects to. */
export interface Frontend {
  readonly vip: IpAddress;
  readonly port: number;
  readonly protocol: Protocol;
  readonly targetPort: number | string;
  readonly portName?: string;
}

/** The identity of a service, unique in a valid mesh. */
export function serviceKey(svc: Pick<Service, 'namespace' | 'name'>): string {
  return `${svc.namespace}/${svc.name}`;
}

/** Every (VIP, port, protocol) of a service: VIPs × ports, VIP-major. */
export function serviceFrontends(svc: Service): Frontend[] {
  return svc.vips.flatMap((vip) => svc.ports.map((p): Frontend => ({
    vip,
    port: p.port,
    protocol: p.protocol,
    targetPort: p.targetPort,
    ...(p.name === undefined ? {} : { portName: p.name }),
  })));
}

/** A parse that either yields a value or says why not, in words fit for a config error. */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/**
 * Parses an IPv4 or IPv6 address. Refuses zone ids (fe80::1%eth0: meaningless
 * in a cluster-wide config) and IPv4-mapped IPv6 (::ffff:a.b.c.d: it would
 * share its 16 bytes with the IPv4 address, so write the IPv4 form).
 */
export function parseIp(text: string): Checked<IpAddress> {
  if (net.isIPv4(text)) {
    const bytes = Buffer.alloc(16);
    V4_MAPPED_PREFIX.copy(bytes);
    text.split('.').forEach((octet, i) => { bytes[12 + i] = Number(octet); });
    return { ok: true, value: { family: 4, text, bytes } };
  }
  if (!net.isIPv6(text)) return { ok: false, reason: `not an IP address: ${quote(text)}` };
  if (text.includes('%')) return { ok: false, reason: `zone ids are not allowed: ${quote(text)}` };
  // The WHATWG URL parser is Node's own IPv6 parser; its host serialization is
  // RFC 5952 form (hex groups only, one ::), which is simple to turn into bytes.
  const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const bytes = v6Bytes(canonical);
  if (bytes.subarray(0, 12).equals(V4_MAPPED_PREFIX)) {
    return { ok: false, reason: `IPv4-mapped IPv6 address ${text}: write it as IPv4 (${Array.from(bytes.subarray(12)).join('.')})` };
  }
  return { ok: true, value: { family: 6, text: canonical, bytes } };
}

/** Bytes of a canonical IPv6 text (hex groups, at most one ::, no dotted tail). */
function v6Bytes(canonical: string): Buffer {
  const [head = '', tail] = canonical.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const all = [...before, ...Array<string>(8 - before.length - after.length).fill('0'), ...after];
  const bytes = Buffer.alloc(16);
  all.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
  return bytes;
}

/** Parses "address/prefix", refusing host bits: 127.77.0.1/16 is more likely a typo than intent. */
export function parseCidr(text: string): Checked<Cidr> {
  const slash = text.indexOf('/');
  if (slash < 0) return { ok: false, reason: `not a CIDR (address/prefix): ${quote(text)}` };
  const ip = parseIp(text.slice(0, slash));
  if (!ip.ok) return { ok: false, reason: `bad CIDR ${quote(text)}: ${ip.reason}` };
  const max = ip.value.family === 4 ? 32 : 128;
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^(0|[1-9][0-9]*)$/.test(prefixText) || prefix > max) {
    return { ok: false, reason: `bad CIDR ${quote(text)}: prefix must be an integer in 0..${max}` };
  }
  // Compare within the family's own bit width: IPv4 bits start at byte 12.
  const offset = ip.value.family === 4 ? 12 : 0;
  const masked = Buffer.from(ip.value.bytes);
  for (let bit = prefix; bit < max; bit++) {
    const i = offset + (bit >> 3);
    masked[i] = (masked[i] ?? 0) & ~(0x80 >> (bit & 7));
  }
  if (!masked.equals(ip.value.bytes)) {
    const fixed = ip.value.family === 4 ? Array.from(masked.subarray(12)).join('.') : new URL(`http://[${v6Text(masked)}]/`).hostname.slice(1, -1);
    return { ok: false, reason: `bad CIDR ${quote(text)}: host bits are set (the network is ${fixed}/${prefix})` };
  }
  return { ok: true, value: { family: ip.value.family, text: `${ip.value.text}/${prefix}`, network: ip.value, prefix } };
}

/**
 * Text of 16 address bytes as the BPF maps and records hold them: a dotted
 * quad for IPv4-mapped bytes, else RFC 5952 (the same canonical form parseIp
 * gives, from the same parser).
 */
export function formatIpBytes(bytes: Buffer): string {
  if (bytes.subarray(0, 12).equals(V4_MAPPED_PREFIX)) return Array.from(bytes.subarray(12)).join('.');
  return new URL(`http://[${v6Text(bytes)}]/`).hostname.slice(1, -1);
}

/** Address and port as one string: "a.b.c.d:port" or "[v6]:port". */
export function formatEndpoint(address: string, family: IpFamily, port: number): string {
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

function v6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/**
 * Membership in a set of CIDRs. One BlockList per family, because a BlockList
 * matches IPv4 addresses against IPv6 rules through ::ffff:0:0/96 (so ::/0
 * would contain every IPv4 address), which is not what a VIP range means.
 */
export class CidrSet {
  private readonly v4 = new net.BlockList();
  private readonly v6 = new net.BlockList();

  constructor(readonly cidrs: readonly Cidr[]) {
    for (const c of cidrs) {
      if (c.family === 4) this.v4.addSubnet(c.network.text, c.prefix, 'ipv4');
      else this.v6.addSubnet(c.network.text, c.prefix, 'ipv6');
    }
  }

  contains(ip: IpAddress): boolean {
    return ip.family === 4 ? this.v4.check(ip.text, 'ipv4') : this.v6.check(ip.text, 'ipv6');
  }
}
