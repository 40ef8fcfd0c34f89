import onnxProto from 'onnx-proto';

// onnx-proto has only a default export under Node ESM.
const { onnx } = onnxProto;

export const DataType = { FLOAT: 1, UINT8: 2, INT64: 7 } as const;

type AttrValue = number | number[] | string;

export type NodeProto = ReturnType<typeof onnx.NodeProto.create>;
type ValueInfo = ReturnType<typeof onnx.ValueInfoProto.create>;
type Tensor = ReturnType<typeof onnx.TensorProto.create>;

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfo {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
}

function attribute(name: string, v: AttrValue) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if (Number.isInteger(v)) return { name, type: A.INT, i: v };
  return { name, type: A.FLOAT, f: v };
}

/** Accumulates nodes and initializers of one graph; names are made unique with a counter. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: Tensor[] = [];
  private counter = 0;

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string, domain = ''): string {
    const out = output ?? this.fresh(opType);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        domain,
        input: inputs,
        output: [out],
        name: `${opType}_${out}`,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return out;
  }

  opMulti(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}): string[] {
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outputs,
        name: `${opType}_${outputs[0]}`,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outputs;
  }

  floatInit(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dataType: DataType.FLOAT,
        dims,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      }),
    );
    return name;
  }

  uint8Init(name: string, dims: number[], data: Uint8Array): string {
    this.initializers.push(onnx.TensorProto.create({ name, dataType: DataType.UINT8, dims, rawData: data }));
    return name;
  }

  int64Init(name: string, values: number[]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dataType: DataType.INT64,
        dims: [values.length],
        rawData: new Uint8Array(data.buffer),
      }),
    );
    return name;
  }

  scalarInit(name: string, value: number): string {
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dataType: DataType.FLOAT,
        dims: [],
        rawData: new Uint8Array(Float32Array.of(value).buffer),
      }),
    );
    return name;
  }

  encode(inputs: ValueInfo[], outputs: ValueInfo[]): Uint8Array {
    return onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        producerName: '@semanticache/runtime',
        graph: onnx.GraphProto.create({
          name: 'g',
          node: this.nodes,
          input: inputs,
          output: outputs,
          initializer: this.initializers,
        }),
        opsetImport: [
          { domain: '', version: 17 },
          { domain: 'com.microsoft', version: 1 },
        ],
      }),
    ).finish();
  }
}
