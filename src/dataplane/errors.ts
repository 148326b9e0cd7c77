/** Why the dataplane cannot be opened as asked; nothing in the kernel was changed. */
export type DataplaneErrorCode =
  | 'ENOCGROUP2'    // no cgroup v2 mount
  | 'EROOTCGROUP'   // asked to attach to the cgroup v2 root
  | 'ENOCGROUP'     // the cgroup does not exist
  | 'EUPGRADE';     // the pinned state needs the mesh file to upgrade, and there is none

export class DataplaneError extends Error {
  override readonly name = 'DataplaneError';

  constructor(readonly code: DataplaneErrorCode, message: string) {
    super(message);
  }
}
