/**
 * Struct layouts shared with the kernel, declared once per struct in TypeScript
 * as a mirror of its C header. Offsets follow C's natural alignment; the
 * kernel tests check every offset and size against the compiled object's BTF.
 *
 * Each layout compiles two readers from the same declaration:
 *  - decode(buf, off): a plain object (one allocation per record);
 *  - view(): a reusable flyweight whose getters read in place, for hot paths
 *    that aggregate without keeping records.
 */
import os from 'node:os';

export type Scalar = 'u8' | 'u16' | 'u32' | 'i32' | 'u64' | 'i64' | 'u64n';
/** A scalar, or a fixed array of them. 'u64n' reads a u64 as a number (exact below 2^53). */
export type FieldDef = Scalar | readonly [Scalar, number];

type JsOf<S> = S extends 'u64' | 'i64' ? bigint : number;
type IsPad<K> = K extends `_pad${string}` ? true : false;

/** The decoded shape: padding (`_pad*`) left out, arrays as arrays. */
export type Decoded<D extends Record<string, FieldDef>> = {
  [K in keyof D as IsPad<K> extends true ? never : K]: D[K] extends readonly [infer S, number] ? JsOf<S>[] : JsOf<D[K]>;
};

export interface FieldLayout {
  name: string;
  scalar: Scalar;
  count: number; // 1 for a scalar
  offset: number;
  size: number; // whole field, all elements
}

export interface StructView<T> {
  /** Points the view at a record; returns itself. */
  at(buf: Buffer, offset: number): StructView<T> & Readonly<T>;
}

const SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, i64: 8, u64n: 8 };
const LE = os.endianness() === 'LE';

/**
 * Reads go through a DataView over the record's buffer: V8 inlines DataView
 * accessors, while Buffer.readUInt32LE and friends are calls with their own
 * checks (about 2x slower per record, measured by bench/ringbuf).
 */
function readExpr(s: Scalar, off: string): string {
  const le = LE ? 'true' : 'false';
  switch (s) {
    case 'u8': return `dv.getUint8(${off})`;
    case 'u16': return `dv.getUint16(${off}, ${le})`;
    case 'u32': return `dv.getUint32(${off}, ${le})`;
    case 'i32': return `dv.getInt32(${off}, ${le})`;
    case 'u64': return `dv.getBigUint64(${off}, ${le})`;
    case 'i64': return `dv.getBigInt64(${off}, ${le})`;
    case 'u64n': return LE
      ? `(dv.getUint32(${off}, true) + dv.getUint32(${off} + 4, true) * 4294967296)`
      : `(dv.getUint32(${off} + 4, false) + dv.getUint32(${off}, false) * 4294967296)`;
  }
}

function writeScalar(dv: DataView, s: Scalar, off: number, v: number | bigint): void {
  switch (s) {
    case 'u8': dv.setUint8(off, Number(v)); return;
    case 'u16': dv.setUint16(off, Number(v), LE); return;
    case 'u32': dv.setUint32(off, Number(v), LE); return;
    case 'i32': dv.setInt32(off, Number(v), LE); return;
    case 'u64': case 'u64n': dv.setBigUint64(off, BigInt(v), LE); return;
    case 'i64': dv.setBigInt64(off, BigInt(v), LE); return;
  }
}

export class StructLayout<D extends Record<string, FieldDef>> {
  readonly fields: readonly FieldLayout[];
  readonly size: number;
  readonly decode: (buf: Buffer, offset: number) => Decoded<D>;
  private readonly View: new () => StructView<Decoded<D>>;

  constructor(readonly name: string, def: D) {
    let off = 0;
    let align = 1;
    const fields: FieldLayout[] = [];
    for (const [fname, fd] of Object.entries(def)) {
      const [scalar, count] = typeof fd === 'string' ? [fd, 1] : [fd[0], fd[1]];
      const es = SIZE[scalar];
      off = Math.ceil(off / es) * es;
      align = Math.max(align, es);
      fields.push({ name: fname, scalar, count, offset: off, size: es * count });
      off += es * count;
    }
    this.fields = fields;
    this.size = Math.ceil(off / align) * align;

    const visible = fields.filter((f) => !f.name.startsWith('_pad'));
    const valueOf = (f: FieldLayout, base: string): string =>
      f.count === 1
        ? readExpr(f.scalar, `${base} + ${f.offset}`)
        : `[${Array.from({ length: f.count }, (_, i) => readExpr(f.scalar, `${base} + ${f.offset + i * SIZE[f.scalar]}`)).join(', ')}]`;
    // Generated once per layout: property reads at fixed offsets, no loops.
    // The DataView is made once per buffer (a ring-buffer batch holds many records).
    this.decode = new Function(`
      let last = null, dv = null;
      return function decode(b, o) {
        if (b !== last) { last = b; dv = new DataView(b.buffer, b.byteOffset, b.byteLength); }
        return { ${visible.map((f) => `${JSON.stringify(f.name)}: ${valueOf(f, 'o')}`).join(', ')} };
      };`)() as (buf: Buffer, offset: number) => Decoded<D>;
    // Internal state is $-prefixed: no C field name can collide with it.
    this.View = new Function(`
      class View {
        constructor() { this.$b = null; this.$dv = null; this.$o = 0; }
        at(b, o) {
          if (b !== this.$b) { this.$b = b; this.$dv = new DataView(b.buffer, b.byteOffset, b.byteLength); }
          this.$o = o;
          return this;
        }
        ${visible.map((f) => `get ${f.name}() { const dv = this.$dv; return ${valueOf(f, 'this.$o')}; }`).join('\n')}
      }
      return View;`)() as new () => StructView<Decoded<D>>;
  }

  /**
   * The C struct's bytes for the given fields (padding and any field left out
   * are zero): map keys and values, test_run contexts.
   */
  encode(values: Partial<Decoded<D>>): Buffer {
    const b = Buffer.alloc(this.size);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const src = values as Record<string, number | bigint | readonly (number | bigint)[] | undefined>;
    for (const f of this.fields) {
      const v = src[f.name];
      if (v === undefined) continue;
      const items = Array.isArray(v) ? v : [v];
      if (items.length !== f.count) throw new RangeError(`${this.name}.${f.name}: ${items.length} values for ${f.count}`);
      const es = f.size / f.count;
      items.forEach((x, i) => writeScalar(dv, f.scalar, f.offset + i * es, x as number | bigint));
    }
    return b;
  }

  /** A fresh flyweight reader over this layout. */
  view(): StructView<Decoded<D>> {
    return new this.View();
  }

  field(name: keyof D & string): FieldLayout {
    const f = this.fields.find((x) => x.name === name);
    if (!f) throw new Error(`${this.name} has no field ${name}`);
    return f;
  }
}

export function struct<const D extends Record<string, FieldDef>>(name: string, def: D): StructLayout<D> {
  return new StructLayout(name, def);
}
