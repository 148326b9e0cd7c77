/**
 * What the kernel should hold, computed from the validated mesh model: one
 * dataplane service per (service, port), with its frontends (VIP:port/proto)
 * and weighted slots. Pure: no kernel access.
 */
import { MESH_MAX_SLOTS } from '../bpf/layouts/mesh';
import { formatEndpoint } from '../config/model';
import type { MeshAddr } from './addr';
import { assignIds } from './ids';
import { slotTable, weightsToSlots } from './slots';

export type Protocol = 'TCP' | 'UDP';

export interface FrontendSpec {
  vip: MeshAddr;
  port: number;
  protocol: Protocol;
}

export interface BackendSpec {
  addr: MeshAddr;
  port: number;
  weight: number;
  labels: Readonly<Record<string, string>>;
}

/** Input: one service port with everything that serves it. */
export interface ServicePortSpec {
  /** namespace/name */
  service: string;
  /** port name, or the port number as text */
  portName: string;
  frontends: FrontendSpec[];
  backends: BackendSpec[];
}

export interface DesiredBackend extends BackendSpec {
  id: number;
  /** "address:port" */
  endpoint: string;
}

export interface DesiredService {
  id: number;
  /** namespace/name:port */
  name: string;
  service: string;
  portName: string;
  frontends: FrontendSpec[];
  backends: DesiredBackend[];
  /** backend index per kernel slot */
  slots: number[];
}

export function endpointText(addr: MeshAddr, port: number): string {
  return formatEndpoint(addr.text, addr.family, port);
}

export function desiredState(ports: readonly ServicePortSpec[]): DesiredService[] {
  const svcIds = assignIds(ports.map((p) => `${p.service}:${p.portName}`));
  const backendIds = assignIds(ports.flatMap((p) => p.backends.map((b) => `${p.service}:${p.portName}|${endpointText(b.addr, b.port)}`)));
  return ports.map((p) => {
    const name = `${p.service}:${p.portName}`;
    const backends = p.backends.map((b) => ({
      ...b,
      endpoint: endpointText(b.addr, b.port),
      id: backendIds.get(`${name}|${endpointText(b.addr, b.port)}`)!,
    }));
    return {
      id: svcIds.get(name)!,
      name,
      service: p.service,
      portName: p.portName,
      frontends: p.frontends,
      backends,
      slots: slotTable(weightsToSlots(backends.map((b) => b.weight), MESH_MAX_SLOTS)),
    };
  });
}

/**
 * What a mesh says that it may not mean: service ports whose connects are
 * refused (ECONNREFUSED) because no backend has a weight - none declared, or
 * all drained to 0. Legal (a service being set up, or taken out on purpose),
 * so a warning, in validate and in status.
 */
export function refusingPorts(desired: readonly DesiredService[]): string[] {
  return desired.filter((s) => s.slots.length === 0).map((s) =>
    `service ${s.name}: ${s.backends.length === 0 ? 'no backends' : 'every backend has weight 0'}: connects to it are refused (ECONNREFUSED)`);
}
