/**
 * Names for the ids the kernel reports: cgroup id -> workload, service id ->
 * service port, backend id -> backend. Rebuilt by the agent on every config
 * apply; the aggregator reads it for every record.
 */
export interface WorkloadName {
  name: string;
  namespace: string;
}

export interface ServiceName {
  /** namespace/name */
  service: string;
  portName: string;
}

export interface BackendName {
  /** "address:port" */
  endpoint: string;
  labels: Readonly<Record<string, string>>;
  serviceId: number;
}

export class Directory {
  readonly workloads = new Map<number, WorkloadName>();
  readonly services = new Map<number, ServiceName>();
  readonly backends = new Map<number, BackendName>();
  /** "address:port" of a backend -> its ids, to attribute server-side records */
  readonly byEndpoint = new Map<string, number[]>();

  static readonly UNKNOWN = 'unknown';

  /** Consulted for a cgroup id not in `workloads`: a cgroup below a workload's, or one that appeared later. */
  private fallback: ((cgroupId: number) => WorkloadName | undefined) | undefined;

  setWorkloadFallback(fn: (cgroupId: number) => WorkloadName | undefined): void {
    this.fallback = fn;
  }

  /**
   * The workload of a socket's cgroup; failing that, of the cgroup above it,
   * then the one above that (0: none): a container's cgroup may be gone
   * before its id was learnt, while its pod's is still there.
   */
  workload(cgroupId: number, parentId = 0, grandparentId = 0): string {
    const w = this.workloadOf(cgroupId) ?? (parentId ? this.workloadOf(parentId) : undefined) ??
      (grandparentId ? this.workloadOf(grandparentId) : undefined);
    return w ? `${w.namespace}/${w.name}` : Directory.UNKNOWN;
  }

  private workloadOf(cgroupId: number): WorkloadName | undefined {
    return this.workloads.get(cgroupId) ?? this.fallback?.(cgroupId);
  }

  service(id: number): string {
    const s = this.services.get(id);
    return s ? `${s.service}:${s.portName}` : id === 0 ? '' : Directory.UNKNOWN;
  }

  backend(id: number): string {
    return this.backends.get(id)?.endpoint ?? (id === 0 ? '' : Directory.UNKNOWN);
  }

  addBackend(id: number, b: BackendName): void {
    this.backends.set(id, b);
    const list = this.byEndpoint.get(b.endpoint) ?? [];
    list.push(id);
    this.byEndpoint.set(b.endpoint, list);
  }
}
