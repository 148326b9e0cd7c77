/**
 * What the agent shows to its local API (and so to the CLI): read-only views
 * over its state. The API server depends on this interface, not on the Agent.
 */
import type { Edge, EdgeLabels } from '../telemetry/aggregator';
import type { Connection } from '../telemetry/record';

export interface ConfigStatus {
  file: string;
  /** the config whose state is applied in the kernel */
  appliedAt?: string;
  /** a newer file that was rejected: the running state stayed */
  rejected?: { at: string; errors: string[] };
  /** what the applied config cannot do on this node (workloads not enrolled); empty when none */
  warnings: string[];
}

export interface AgentStatus {
  instance: string;
  version: string;
  pid: number;
  startedAt: string;
  /** 'installed' on a fresh start, 'adopted' when pinned state was re-used */
  dataplane: 'installed' | 'adopted';
  /** What the start changed in the pinned state (upgrade or changed setting), one line each; empty otherwise. */
  dataplaneChanges: string[];
  cgroup: string;
  bpffsDir: string;
  config: ConfigStatus;
  services: number;
  /** Workloads in the applied config (absent from agents before 0.3). */
  workloads?: number;
  frontends: number;
  records: number;
  openConnections: number;
  /**
   * Edges (side, workload, service, backend) the agent keeps now, and how
   * many edgeTtl dropped; ttlMs 0: never; unattributed: connections opened
   * under workload "unknown" since the start (absent before 0.3). Absent from
   * agents older than this field, which a newer CLI may be asked about.
   */
  edges?: { live: number; expired: number; ttlMs: number; unattributed?: number };
  ringbuf: { records: number; dropped: number; decodeErrors: number };
  otlp?: { endpoint: string; exported: number; failed: number; dropped: number };
  /** With bpfStats on: since when the kernel counts, and each hook's program runs and run time (ns). */
  bpfStats?: { since: string; programs: { hook: string; runs: number; runNs: number }[] };
}

export interface ServiceView {
  /** namespace/name */
  name: string;
  namespace: string;
  ports: { name: string; port: number; protocol: 'TCP' | 'UDP'; targetPort: number | string }[];
  vips: string[];
  backends: number;
  /** connect-time verdicts from the kernel, summed over the service's ports */
  verdicts: Record<string, number>;
}

export interface BackendView {
  service: string;
  port: string;
  endpoint: string;
  weight: number;
  labels: Record<string, string>;
  /** share of new connections: weight over the port's total */
  share: number;
  /** from telemetry (client side) */
  connections: number;
  failed: number;
  /**
   * The split as it is now, while `share` is what the weights ask and
   * `connections` counts since the agent started: of the port's client
   * connections among the agent's recent records (recentOf), how many
   * reached this backend.
   */
  recent: number;
  recentOf: number;
}

/**
 * A connection record with the names of its ids, from the agent's current
 * config (Aggregator.labelsOf): workload "namespace/name", service
 * "namespace/name:port", backend "address:port"; '' for non-service traffic,
 * 'unknown' for an id the config does not name. `labels.side` is the record's side.
 */
export type NamedRecord = Connection & {
  labels: EdgeLabels;
  /**
   * When the record's event happened on the wall clock (RFC 3339, UTC): the
   * close, the failed connect, or the report of an open connection. Absent
   * from an agent older than the field.
   */
  time?: string;
};

/**
 * Matched against the record's labels. workload: "namespace/name", or a bare
 * "name" in any namespace. service: "namespace/name", or a bare "name" meaning
 * default/name; any port of the service matches.
 */
export interface ConnectionFilter {
  workload?: string;
  service?: string;
}

export interface AgentView {
  status(): AgentStatus;
  services(): ServiceView[];
  /** undefined when no such service */
  backends(service: string): BackendView[] | undefined;
  edges(): Edge[];
  /** recent closed/failed connections, oldest first */
  connections(filter: ConnectionFilter): NamedRecord[];
  /** connections open as of their latest report (interim records), least recently reported first */
  openConnections(filter: ConnectionFilter): NamedRecord[];
  /** every new record (close, failed, interim) from now on; returns unsubscribe */
  follow(filter: ConnectionFilter, fn: (rec: NamedRecord) => void): () => void;
}
