/**
 * Spec before load, live objects after (as cilium/ebpf's CollectionSpec and
 * Collection): open an ELF, set tunables and map sizes, then load() into a
 * Collection of programs and maps that own their fds. The libbpf object is
 * closed right after load; nothing live depends on it.
 */
import os from 'node:os';
import { call, BpfArgumentError } from './errors';
import { BpfMap } from './map';
import { native, NativeBpfObject, NativeDatasecVar, NativeMapSpec, NativeProgramSpec } from './native';
import { Program } from './program';

export type ConstantValue = number | bigint | boolean;

export class BpfObjectSpec {
  readonly path: string;
  readonly programs: readonly NativeProgramSpec[];
  readonly maps: readonly NativeMapSpec[];
  private obj: NativeBpfObject | undefined;
  private readonly rodata: ReadonlyMap<string, NativeDatasecVar>;

  private constructor(objPath: string, obj: NativeBpfObject) {
    this.path = objPath;
    this.obj = obj;
    this.programs = call(() => obj.programs());
    this.maps = call(() => obj.maps());
    this.rodata = new Map(call(() => obj.datasecVars('.rodata')).map((v) => [v.name, v]));
  }

  static open(objPath: string): BpfObjectSpec {
    const N = native();
    return new BpfObjectSpec(objPath, call(() => new N.BpfObject(objPath)));
  }

  /** Names of the `const volatile` tunables this object declares. */
  get constantNames(): string[] {
    return [...this.rodata.keys()];
  }

  /**
   * Sets `const volatile` globals before load. Every name and value is checked
   * first; on any error nothing is written.
   */
  setConstants(values: Record<string, ConstantValue>): this {
    const writes: [NativeDatasecVar, Buffer][] = [];
    const errors: string[] = [];
    for (const [name, value] of Object.entries(values)) {
      const v = this.rodata.get(name);
      if (!v) {
        errors.push(`${name}: no such constant in ${this.path} (has: ${this.constantNames.join(', ') || 'none'})`);
        continue;
      }
      const bytes = encodeConstant(value, v.size);
      if (typeof bytes === 'string') errors.push(`${name}: ${bytes}`);
      else writes.push([v, bytes]);
    }
    if (errors.length) throw new BpfArgumentError(`invalid constants:\n  ${errors.join('\n  ')}`);
    const obj = this.live('set constants');
    for (const [v, bytes] of writes) call(() => obj.setInitialValue('.rodata', v.offset, bytes));
    return this;
  }

  setMaxEntries(map: string, n: number): this {
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw new BpfArgumentError(`max entries of ${map} must be a positive integer, got ${n}`);
    const obj = this.live('set max entries');
    call(() => obj.setMaxEntries(map, n));
    return this;
  }

  /**
   * Makes the object's programs use an existing map (a pinned one, after a
   * restart or an upgrade) instead of creating it. The map stays owned by
   * the caller.
   */
  reuseMap(name: string, map: BpfMap): this {
    const obj = this.live('reuse map');
    call(() => obj.reuseMap(name, map.fd));
    return this;
  }

  /** The maps as load() would create them now (sizes set so far included). */
  mapDefinitions(): NativeMapSpec[] {
    const obj = this.live('read map definitions');
    return call(() => obj.maps());
  }

  /** Programs not wanted by this use of the object are left out of load(). */
  only(programNames: string[]): this {
    const known = new Set(this.programs.map((p) => p.name));
    const unknown = programNames.filter((n) => !known.has(n));
    if (unknown.length) throw new BpfArgumentError(`no program(s) ${unknown.join(', ')} in ${this.path}`);
    const obj = this.live('select programs');
    for (const p of this.programs) call(() => obj.setAutoload(p.name, programNames.includes(p.name)));
    return this;
  }

  /**
   * Loads into the kernel. Throws VerifierError with the log if a program is
   * refused. The spec is consumed either way.
   */
  load(): Collection {
    const obj = this.live('load');
    this.obj = undefined;
    try {
      call(() => obj.load());
      const N = native();
      const programs = new Map<string, Program>();
      const autoload = new Map(call(() => obj.programs()).map((p) => [p.name, p.autoload]));
      for (const p of this.programs) {
        if (!autoload.get(p.name)) continue;
        programs.set(p.name, new Program(new N.Program(call(() => obj.programFd(p.name))), {
          name: p.name, section: p.section, type: p.type, expectedAttachType: p.expectedAttachType,
        }));
      }
      const maps = new Map<string, BpfMap>();
      for (const m of this.maps) maps.set(m.name, new BpfMap(new N.Map(call(() => obj.mapFd(m.name))), m.name));
      return new Collection(this.path, programs, maps);
    } finally {
      obj.close();
    }
  }

  /** Idempotent: releases the ELF without loading. */
  close(): void {
    this.obj?.close();
    this.obj = undefined;
  }

  private live(op: string): NativeBpfObject {
    if (!this.obj) throw new BpfArgumentError(`${op}: the spec of ${this.path} was already loaded or closed`);
    return this.obj;
  }
}

/** Loaded programs and maps. close() closes every handle; idempotent. */
export class Collection {
  constructor(
    readonly path: string,
    private readonly programMap: Map<string, Program>,
    private readonly mapMap: Map<string, BpfMap>,
  ) {}

  program(name: string): Program {
    const p = this.programMap.get(name);
    if (!p) throw new BpfArgumentError(`no loaded program '${name}' in ${this.path} (loaded: ${[...this.programMap.keys()].join(', ')})`);
    return p;
  }

  map(name: string): BpfMap {
    const m = this.mapMap.get(name);
    if (!m) throw new BpfArgumentError(`no map '${name}' in ${this.path} (has: ${[...this.mapMap.keys()].join(', ')})`);
    return m;
  }

  get programs(): Program[] {
    return [...this.programMap.values()];
  }

  get maps(): BpfMap[] {
    return [...this.mapMap.values()];
  }

  close(): void {
    for (const p of this.programMap.values()) p.close();
    for (const m of this.mapMap.values()) m.close();
  }
}

/** Little-endian on little-endian hosts; returns a reason string on a bad value. */
function encodeConstant(value: ConstantValue, size: number): Buffer | string {
  let big: bigint;
  if (typeof value === 'boolean') big = value ? 1n : 0n;
  else if (typeof value === 'bigint') big = value;
  else if (Number.isInteger(value)) big = BigInt(value);
  else return `must be an integer, got ${value}`;
  const bits = BigInt(size * 8);
  const min = -(1n << (bits - 1n));
  const max = (1n << bits) - 1n;
  if (big < min || big > max) return `${big} does not fit in ${size} byte(s)`;
  const u = BigInt.asUintN(size * 8, big);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = Number((u >> BigInt(8 * i)) & 0xffn);
  return os.endianness() === 'LE' ? b : b.reverse();
}
