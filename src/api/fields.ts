/**
 * Typed reads from the plain objects protobufjs's toObject() produces. That
 * output is `{ [k: string]: any }`; everything crosses into TypeScript through
 * these checks, so a schema drift or a peer's nonsense surfaces as a
 * SchemaError naming the field, never as a wrong-typed value further in.
 *
 * Conversion options are fixed by schema.ts (longs as strings, enums as
 * names, defaults filled in), which is what these readers expect.
 */

export class SchemaError extends Error {
  override readonly name = 'SchemaError';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Fields {
  private constructor(
    private readonly v: Record<string, unknown>,
    /** dotted path for error messages, e.g. "record.local" */
    readonly where: string,
  ) {}

  static of(v: unknown, where: string): Fields {
    if (!isRecord(v)) throw new SchemaError(`${where}: expected a message, got ${v === null ? 'nothing' : typeof v}`);
    return new Fields(v, where);
  }

  private fail(key: string, what: string, got: unknown): never {
    throw new SchemaError(`${this.where}.${key}: expected ${what}, got ${JSON.stringify(got) ?? typeof got}`);
  }

  has(key: string): boolean {
    const x = this.v[key];
    return x !== undefined && x !== null;
  }

  str(key: string): string {
    const x = this.v[key];
    return typeof x === 'string' ? x : this.fail(key, 'a string', x);
  }

  /** proto3 `optional string`: absent when unset. */
  optStr(key: string): string | undefined {
    return this.has(key) ? this.str(key) : undefined;
  }

  bool(key: string): boolean {
    const x = this.v[key];
    return typeof x === 'boolean' ? x : this.fail(key, 'a boolean', x);
  }

  /** uint32/int32/double: a number already. */
  num(key: string): number {
    const x = this.v[key];
    return typeof x === 'number' && Number.isFinite(x) ? x : this.fail(key, 'a number', x);
  }

  /** uint64 meant as a JS number: refused past 2^53 rather than silently rounded. */
  u64(key: string): number {
    const n = Number(this.u64n(key));
    return Number.isSafeInteger(n) ? n : this.fail(key, 'a uint64 below 2^53', this.v[key]);
  }

  /** proto3 `optional uint64`: absent when unset. */
  optU64(key: string): number | undefined {
    return this.has(key) ? this.u64(key) : undefined;
  }

  /** uint64 kept whole (socket cookies). */
  u64n(key: string): bigint {
    const x = this.v[key];
    if (typeof x === 'string' && /^\d+$/.test(x)) return BigInt(x);
    if (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0) return BigInt(x);
    return this.fail(key, 'a uint64', x);
  }

  /** An enum by its proto name, mapped to the TypeScript value; unspecified/unknown values are refused. */
  enm<T>(key: string, names: Readonly<Record<string, T>>): T {
    const x = this.v[key];
    if (typeof x === 'string' && Object.prototype.hasOwnProperty.call(names, x)) return names[x] as T;
    return this.fail(key, `one of ${Object.keys(names).join(', ')}`, x);
  }

  /** An enum where a value this side does not know (a newer peer) falls back instead of failing. */
  enmOr<T>(key: string, names: Readonly<Record<string, T>>, fallback: T): T {
    const x = this.v[key];
    return typeof x === 'string' && Object.prototype.hasOwnProperty.call(names, x) ? (names[x] as T) : fallback;
  }

  msg(key: string): Fields {
    return Fields.of(this.v[key], `${this.where}.${key}`);
  }

  /** A singular message field that may be unset (null with defaults on). */
  optMsg(key: string): Fields | undefined {
    return this.has(key) ? this.msg(key) : undefined;
  }

  list<T>(key: string, each: (item: unknown, where: string) => T): T[] {
    const x = this.v[key];
    if (!Array.isArray(x)) return this.fail(key, 'a list', x);
    return x.map((item: unknown, i) => each(item, `${this.where}.${key}[${i}]`));
  }

  msgs<T>(key: string, each: (f: Fields) => T): T[] {
    return this.list(key, (item, where) => each(Fields.of(item, where)));
  }

  strs(key: string): string[] {
    return this.list(key, (item, where) => {
      if (typeof item !== 'string') throw new SchemaError(`${where}: expected a string`);
      return item;
    });
  }

  /** map<string, V>: a plain object after toObject. */
  map<T>(key: string, each: (value: unknown, where: string) => T): Record<string, T> {
    const x = this.v[key];
    if (!isRecord(x)) return this.fail(key, 'a map', x);
    const out: Record<string, T> = {};
    for (const [k, val] of Object.entries(x)) out[k] = each(val, `${this.where}.${key}[${k}]`);
    return out;
  }

  /** Which member of a oneof is set (toObject's `oneofs: true` virtual field). */
  oneof(name: string): string | undefined {
    const x = this.v[name];
    return typeof x === 'string' ? x : undefined;
  }
}

/** Map values of map<string, uint64>. */
export function u64Value(v: unknown, where: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : typeof v === 'number' ? v : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new SchemaError(`${where}: expected a uint64 below 2^53`);
  return n;
}

export function strValue(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new SchemaError(`${where}: expected a string`);
  return v;
}
