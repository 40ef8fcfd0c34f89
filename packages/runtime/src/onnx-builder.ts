// The subset of ONNX's ModelProto the runtime emits, written straight to protobuf bytes (no protobuf library at run
// time). Fields go out in field-number order with the same presence rules as onnx-proto's protobufjs encoder, so the
// bytes are identical to what it produced (onnx-builder.test.ts checks that on every graph buildGraphs makes).

export const DataType = { FLOAT: 1, UINT8: 2, INT64: 7 } as const;

/** An attribute that must be written as a FLOAT even when its value is a whole number (a plain integer is an INT). */
export interface FloatAttr {
  float: number;
}

type AttrValue = number | number[] | string | FloatAttr;

/** ONNX ValueInfoProto of a tensor: element type and shape (a string is a symbolic dimension). */
export interface ValueInfo {
  name: string;
  elemType: number;
  dims: (number | string)[];
}

export interface NodeProto {
  opType: string;
  /** Written only when set ('' included), as a protobufjs message written it. */
  domain?: string;
  input: string[];
  output: string[];
  name: string;
  attribute: { name: string; value: AttrValue }[];
}

/** An initializer held as raw little-endian bytes. */
export interface TensorProto {
  name: string;
  dataType: number;
  dims: number[];
  rawData: Uint8Array;
}

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfo {
  return { name, elemType, dims };
}

/** Accumulates nodes and initializers of one graph; names are made unique with a counter. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string, domain = ''): string {
    const out = output ?? this.fresh(opType);
    this.nodes.push({
      opType,
      domain,
      input: inputs,
      output: [out],
      name: `${opType}_${out}`,
      attribute: attributes(attrs),
    });
    return out;
  }

  /** A node with several outputs; '' skips an optional output. */
  opMulti(
    opType: string,
    inputs: string[],
    outputs: string[],
    attrs: Record<string, AttrValue> = {},
    domain?: string,
  ): string[] {
    this.nodes.push({
      opType,
      ...(domain === undefined ? {} : { domain }),
      input: inputs,
      output: outputs,
      name: `${opType}_${outputs[0]}`,
      attribute: attributes(attrs),
    });
    return outputs;
  }

  /** An initializer of any element type from its raw little-endian bytes. */
  rawInit(name: string, dataType: number, dims: number[], rawData: Uint8Array): string {
    this.initializers.push({ name, dataType, dims, rawData });
    return name;
  }

  floatInit(name: string, dims: number[], data: Float32Array): string {
    return this.rawInit(name, DataType.FLOAT, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  uint8Init(name: string, dims: number[], data: Uint8Array): string {
    return this.rawInit(name, DataType.UINT8, dims, data);
  }

  int64Init(name: string, values: number[]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    return this.rawInit(name, DataType.INT64, [values.length], new Uint8Array(data.buffer));
  }

  scalarInit(name: string, value: number): string {
    return this.rawInit(name, DataType.FLOAT, [], new Uint8Array(Float32Array.of(value).buffer));
  }

  encode(inputs: ValueInfo[], outputs: ValueInfo[]): Uint8Array {
    const graph = new Message();
    for (const n of this.nodes) graph.message(1, nodeMessage(n));
    graph.string(2, 'g');
    for (const t of this.initializers) graph.message(5, tensorMessage(t));
    for (const v of inputs) graph.message(11, valueInfoMessage(v));
    for (const v of outputs) graph.message(12, valueInfoMessage(v));
    const model = new Message();
    model.varint(1, 8); // ir_version
    model.string(2, '@semanticache/runtime'); // producer_name
    model.message(7, graph);
    for (const [domain, version] of [
      ['', 17],
      ['com.microsoft', 1],
    ] as const) {
      model.message(8, new Message().string(1, domain).varint(2, version)); // opset_import
    }
    return model.finish();
  }
}

function attributes(attrs: Record<string, AttrValue>): NodeProto['attribute'] {
  return Object.entries(attrs).map(([name, value]) => ({ name, value }));
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

function attributeMessage(name: string, v: AttrValue): Message {
  const m = new Message().string(1, name);
  if (typeof v === 'string') return m.bytes(4, utf8.encode(v)).varint(20, ATTR_STRING);
  if (Array.isArray(v)) return m.packed(8, v).varint(20, ATTR_INTS);
  if (typeof v === 'object') return m.float(2, v.float).varint(20, ATTR_FLOAT);
  if (Number.isInteger(v)) return m.varint(3, v).varint(20, ATTR_INT);
  return m.float(2, v).varint(20, ATTR_FLOAT);
}

function nodeMessage(n: NodeProto): Message {
  const m = new Message();
  for (const s of n.input) m.string(1, s);
  for (const s of n.output) m.string(2, s);
  m.string(3, n.name).string(4, n.opType);
  for (const a of n.attribute) m.message(5, attributeMessage(a.name, a.value));
  if (n.domain !== undefined) m.string(7, n.domain);
  return m;
}

function tensorMessage(t: TensorProto): Message {
  return new Message().packed(1, t.dims).varint(2, t.dataType).string(8, t.name).bytes(9, t.rawData);
}

function valueInfoMessage(v: ValueInfo): Message {
  const shape = new Message();
  for (const d of v.dims) {
    shape.message(1, typeof d === 'string' ? new Message().string(2, d) : new Message().varint(1, d));
  }
  const tensorType = new Message().varint(1, v.elemType).message(2, shape);
  return new Message().string(1, v.name).message(2, new Message().message(1, tensorType));
}

const utf8 = new TextEncoder();
/** Byte runs at least this long are kept by reference (initializer data) instead of copied into the scratch. */
const BIG = 256;

/**
 * A protobuf message written field by field. Nested messages are added complete (their length is known then) and
 * large byte fields by reference, so `finish()` copies every initializer once into one exact-size buffer.
 */
class Message {
  private readonly parts: (Uint8Array | Message)[] = [];
  private scratch: number[] = [];
  private length = 0;

  private key(field: number, wireType: number): void {
    this.pushVarint((field << 3) | wireType);
  }

  private pushVarint(v: number): void {
    if (v < 0) {
      // int32/int64 negatives: ten bytes of the 64-bit two's complement
      let b = BigInt.asUintN(64, BigInt(v));
      for (let i = 0; i < 9; i++, b >>= 7n) this.scratch.push(Number(b & 0x7fn) | 0x80);
      this.scratch.push(Number(b));
      this.length += 10;
      return;
    }
    if (!Number.isSafeInteger(v)) throw new RangeError(`onnx-builder: ${v} is not an integer protobuf can hold`);
    while (v > 0x7f) {
      this.scratch.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
      this.length++;
    }
    this.scratch.push(v);
    this.length++;
  }

  private flush(): void {
    if (this.scratch.length > 0) this.parts.push(Uint8Array.from(this.scratch));
    this.scratch = [];
  }

  varint(field: number, v: number): this {
    this.key(field, 0);
    this.pushVarint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(Float32Array.of(v).buffer);
    this.scratch.push(b[0], b[1], b[2], b[3]);
    this.length += 4;
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.pushVarint(data.length);
    if (data.length >= BIG) {
      this.flush();
      this.parts.push(data);
    } else {
      for (let i = 0; i < data.length; i++) this.scratch.push(data[i]);
    }
    this.length += data.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  /** A packed repeated varint field; nothing when empty. */
  packed(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const inner = new Message();
    for (const v of values) inner.pushVarint(v);
    return this.message(field, inner);
  }

  message(field: number, m: Message): this {
    this.key(field, 2);
    this.pushVarint(m.length);
    this.flush();
    this.parts.push(m);
    this.length += m.length;
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    const end = this.writeTo(out, 0);
    if (end !== out.length) throw new Error(`onnx-builder: wrote ${end} of ${out.length} bytes`);
    return out;
  }

  private writeTo(out: Uint8Array, offset: number): number {
    for (const p of this.parts) {
      if (p instanceof Message) {
        offset = p.writeTo(out, offset);
      } else {
        out.set(p, offset);
        offset += p.length;
      }
    }
    out.set(this.scratch, offset);
    return offset + this.scratch.length;
  }
}
