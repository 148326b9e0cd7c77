/** A loaded BPF program: attach it, pin it, run it with test_run. */
import path from 'node:path';
import { call, fromNative, BpfArgumentError } from './errors';
import { Link } from './link';
import type { BpfMap } from './map';
import { native, NativeProgram, NativeProgramInfo, NativeTestRunResult } from './native';
import { openPinned } from './pins';

export interface ProgramMeta {
  name: string;
  section: string;
  type: number;
  /** From the ELF section (libbpf); 0 for a program re-opened from a pin. */
  expectedAttachType: number;
}

export interface TestRunOptions {
  ctx?: Buffer;
  data?: Buffer;
  repeat?: number;
}

export class Program {
  readonly meta: ProgramMeta;
  private handle: NativeProgram | undefined;

  /** @internal use BpfObjectSpec.load() or Program.fromPin. */
  constructor(handle: NativeProgram, meta: ProgramMeta) {
    this.handle = handle;
    this.meta = meta;
  }

  static fromPin(pinPath: string): Program {
    return Program.fromFd(openPinned(pinPath, 'prog'));
  }

  /** A program the kernel has loaded, by id (e.g. a link's progId). */
  static fromId(id: number): Program {
    if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) throw new BpfArgumentError(`program id must be a positive u32, got ${id}`);
    return Program.fromFd(call(() => native().progGetFdById(id)));
  }

  /** A handle for a program loaded elsewhere: its name and type from the kernel, no section. */
  private static fromFd(fd: number): Program {
    const handle = new (native().Program)(fd);
    const info = call(() => handle.info());
    return new Program(handle, { name: info.name, section: '', type: info.type, expectedAttachType: 0 });
  }

  get name(): string {
    return this.meta.name;
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  info(): NativeProgramInfo {
    return call(() => this.live('info').info());
  }

  /**
   * Attaches to a cgroup v2 directory as a BPF link. attachType defaults to
   * the one the program's section implies (cgroup/connect4, sockops, ...).
   */
  attachCgroup(cgroupPath: string, attachType: number = this.meta.expectedAttachType): Link {
    if (!path.isAbsolute(cgroupPath)) throw new BpfArgumentError(`cgroup path must be absolute: ${cgroupPath}`);
    const h = this.live('attach');
    const fd = call(() => h.attachCgroup(cgroupPath, attachType));
    return new Link(new (native().Link)(fd), 'cgroup', `${this.meta.section || this.name} on ${cgroupPath}`);
  }

  /** tp_btf programs attach to the tracepoint fixed at load; raw_tp ones take a name. */
  attachTracepoint(rawTracepoint?: string): Link {
    const h = this.live('attach');
    const fd = call(() => h.attachRawTracepoint(rawTracepoint ?? null));
    return new Link(new (native().Link)(fd), 'tracepoint', rawTracepoint ?? this.meta.section);
  }

  /** An iterator over a map's elements (e.g. iter/bpf_sk_storage_map); run it with Link.runIterator(). */
  attachIterator(map: BpfMap): Link {
    const h = this.live('attach');
    const fd = call(() => h.attachMapIter(map.fd));
    return new Link(new (native().Link)(fd), 'iterator', `${this.meta.section || this.name} over map ${map.name}`);
  }

  /** sk_msg / sk_skb onto a sockmap or sockhash (libbpf 1.1 has no link for this). */
  attachToMap(map: BpfMap, attachType: number = this.meta.expectedAttachType): Link {
    const h = this.live('attach');
    const handle = call(() => new (native().Link)(h.fd, map.fd, attachType));
    return new Link(handle, 'map', `${this.meta.section || this.name} on map ${map.name}`);
  }

  pin(pinPath: string): void {
    call(() => this.live('pin').pin(pinPath));
  }

  testRun(opts: TestRunOptions = {}): NativeTestRunResult {
    const h = this.live('test_run');
    return call(() => h.testRun(opts.ctx ?? null, opts.data ?? null, checkRepeat(opts.repeat)));
  }

  /** test_run on a libuv worker thread: the JS thread stays free meanwhile. */
  async testRunAsync(opts: TestRunOptions = {}): Promise<NativeTestRunResult> {
    const h = this.live('test_run');
    const repeat = checkRepeat(opts.repeat);
    try {
      return await h.testRunAsync(opts.ctx ?? null, opts.data ?? null, repeat);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Idempotent; attachments made from this program stay with their Links. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  /** @internal */
  get fd(): number {
    return this.live('fd').fd;
  }

  private live(op: string): NativeProgram {
    if (!this.handle) throw new BpfArgumentError(`${op} on closed program ${this.meta.name}`);
    return this.handle;
  }
}

/** 0 means once; SEC("syscall") programs refuse any other value. */
function checkRepeat(repeat: number | undefined): number {
  const r = repeat ?? 0;
  if (!Number.isInteger(r) || r < 0 || r > 0xffffffff) throw new BpfArgumentError(`repeat must be an integer >= 0, got ${r}`);
  return r;
}
