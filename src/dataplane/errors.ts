/** Why the dataplane cannot do as asked; nothing in the kernel was changed. */
export type DataplaneErrorCode =
  | 'ENOCGROUP2'    // no cgroup v2 mount
  | 'EROOTCGROUP'   // asked to attach to the cgroup v2 root
  | 'ENOCGROUP'     // the cgroup does not exist
  | 'EUPGRADE'      // the pinned state needs the mesh file to upgrade, and there is none
  | 'ECAPACITY';    // the mesh does not fit the kernel's service or slot table

export class DataplaneError extends Error {
  override readonly name = 'DataplaneError';

  constructor(readonly code: DataplaneErrorCode, message: string) {
    super(message);
  }
}
