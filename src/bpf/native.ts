/**
 * The addon's shape, typed once. Everything here is mechanical: fds in, fds
 * out, raw Buffers; validation and defaults live in the modules that wrap it
 * (object.ts, program.ts, map.ts, link.ts, ringbuf.ts).
 */
import path from 'node:path';

export interface NativeProgramSpec {
  name: string;
  section: string;
  type: number;
  expectedAttachType: number;
  autoload: boolean;
}

export interface NativeMapSpec {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  internal: boolean;
}

export interface NativeDatasecVar {
  name: string;
  offset: number;
  size: number;
}

export interface NativeBpfObject {
  programs(): NativeProgramSpec[];
  maps(): NativeMapSpec[];
  datasecVars(section: string): NativeDatasecVar[];
  setInitialValue(map: string, offset: number, bytes: Buffer): void;
  setMaxEntries(map: string, n: number): void;
  setAutoload(program: string, on: boolean): void;
  reuseMap(map: string, fd: number): void;
  load(): void;
  programFd(name: string): number;
  mapFd(name: string): number;
  close(): void;
}

interface NativeFdHandle {
  readonly fd: number;
  close(): void;
  pin(path: string): void;
}

export interface NativeProgramInfo {
  id: number;
  type: number;
  name: string;
  tag: string;
  /** Total ns the program ran; moves only while run-time stats are on. */
  runTimeNs: number;
  runCount: number;
  recursionMisses: number;
}

export interface NativeTestRunResult {
  retval: number;
  durationNs: number;
}

export interface NativeProgram extends NativeFdHandle {
  info(): NativeProgramInfo;
  attachCgroup(cgroupPath: string, attachType: number): number;
  attachRawTracepoint(name: string | null): number;
  attachMapIter(mapFd: number): number;
  testRun(ctx: Buffer | null, data: Buffer | null, repeat: number): NativeTestRunResult;
  testRunAsync(ctx: Buffer | null, data: Buffer | null, repeat: number): Promise<NativeTestRunResult>;
}

export interface NativeMapInfo {
  id: number;
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface NativeMap extends NativeFdHandle {
  info(): NativeMapInfo;
  lookup(key: Buffer, out: Buffer): boolean;
  update(key: Buffer, value: Buffer, flags: number): void;
  delete(key: Buffer): boolean;
  nextKey(key: Buffer | null, out: Buffer): boolean;
  lookupBatch(inToken: Buffer | null, outToken: Buffer, keys: Buffer, values: Buffer, count: number): { count: number; done: boolean };
  updateBatch(keys: Buffer, values: Buffer, count: number, elemFlags: number): number;
  deleteBatch(keys: Buffer, count: number): number;
  freeze(): void;
  queryPrograms(attachType: number): number[];
}

export interface NativeLinkInfo {
  id?: number;
  type?: number;
  progId?: number;
  cgroupId?: bigint;
  attachType?: number;
  mapAttached?: boolean;
}

export interface NativeLink extends NativeFdHandle {
  info(): NativeLinkInfo;
  detach(): void;
  update(progFd: number): void;
}

/** One walk of an iterator link, read in parts. */
export interface NativeIter {
  /** Walks on until the program has written up to maxBytes (>= 1); 0: the walk is done. */
  read(maxBytes: number): number;
  close(): void;
  readonly fd: number;
}

export interface NativeRingBufferStats {
  records: number;
  batches: number;
  bytes: number;
  backpressureWaits: number;
  inFlight: number;
  lastErrno: number;
}

export interface NativeRingBuffer {
  stop(drain: boolean): void;
  stats(): NativeRingBufferStats;
}

export interface NativeMappedRing {
  buffers(): { consumer: Buffer; producer: Buffer; data: Buffer };
  ack(): void;
  stop(): void;
  wakeups(): number;
}

export interface NativeConstants {
  progType: Record<string, number>;
  attachType: Record<string, number>;
  mapType: Record<string, number>;
  helper: Record<string, number>;
  linkType: Record<string, number>;
  updateFlag: { ANY: number; NOEXIST: number; EXIST: number };
  ringbufFlag: { NO_WAKEUP: number; FORCE_WAKEUP: number };
}

export interface NativeAddon {
  BpfObject: new (path: string) => NativeBpfObject;
  Program: new (fd: number) => NativeProgram;
  Map: new (fd: number) => NativeMap;
  Link: {
    new (linkFd: number): NativeLink;
    new (progFd: number, mapFd: number, attachType: number): NativeLink;
  };
  Iter: new (linkFd: number) => NativeIter;
  RingBuffer: new (
    mapFd: number,
    onBatch: (batch: Buffer, count: number) => void,
    onClose: () => void,
    maxBatchBytes: number,
    maxInFlight: number,
    intervalMs: number,
  ) => NativeRingBuffer;
  MappedRing: new (mapFd: number, onReady: () => void, intervalMs: number) => NativeMappedRing;
  objGet(path: string): number;
  fdKind(fd: number): 'map' | 'prog' | 'link' | 'other';
  closeFd(fd: number): void;
  /** An exclusive flock on the file (created 0600): its fd, or EWOULDBLOCK while another holds it. */
  lockFile(path: string): number;
  enableRunTimeStats(): number;
  progGetFdById(id: number): number;
  probeProgType(type: number): boolean;
  probeMapType(type: number): boolean;
  /** expectedAttachType: 0 unless the type needs one (CGROUP_SOCK_ADDR: CGROUP_INET4_CONNECT). */
  probeHelper(progType: number, helper: number, expectedAttachType: number): boolean;
  numPossibleCpus(): number;
  constants: NativeConstants;
  libbpfVersion: string;
}

/** Repository root, from dist/src/bpf or src/bpf alike. */
export const repoRoot: string = (() => {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (require('node:fs').existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the sockmesh repository root above ${__dirname}`);
})();

let cached: NativeAddon | undefined;

/** The addon, loaded on first use so pure modules import this file for free. */
export function native(): NativeAddon {
  if (!cached) {
    const file = path.join(repoRoot, 'build', 'Release', 'sockmesh_native.node');
    try {
      cached = require(file) as NativeAddon;
    } catch (err) {
      throw new Error(`cannot load the native addon ${file}: ${(err as Error).message}. ` +
        'Build it with `npm run build:native` (needs libbpf-dev, see README).');
    }
  }
  return cached;
}
