/** Every layout mirrored from a bpf/*.h header, by the object that carries its BTF. */
import type { StructLayout, FieldDef } from '../layout';
import { MeshBackend, MeshConnEvent, MeshConnEventV1, MeshSlotKey, MeshSvc, MeshSvcKey, MeshVerdictKey } from './mesh';
import { RingbenchArgs, RingbenchRecord, RingbenchStats } from './ringbench';
import { SelftestConnectDst, SelftestConnEvent } from './selftest';

export const LAYOUTS: readonly { object: string; layouts: readonly StructLayout<Record<string, FieldDef>>[] }[] = [
  { object: 'selftest', layouts: [SelftestConnEvent, SelftestConnectDst] },
  { object: 'mesh', layouts: [MeshSvcKey, MeshSvc, MeshSlotKey, MeshBackend, MeshVerdictKey, MeshConnEvent] },
  { object: 'mesh_migrate', layouts: [MeshConnEventV1] },
  { object: 'ringbench', layouts: [RingbenchRecord, RingbenchArgs, RingbenchStats] },
];
