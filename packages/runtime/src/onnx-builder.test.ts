import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { parseHfConfig } from './config.js';
import { buildGraphs } from './graphs.js';
import { DataType, GraphBuilder, type ValueInfo, valueInfo } from './onnx-builder.js';
import { PARITY_MODELS, parityDir, readJson } from './test-support.js';
import { loadHfWeights } from './weights.js';

// onnx-proto (protobufjs, a devDependency only) is the reference: the runtime used to build its graphs with it.
const { onnx } = onnxProto;

/** What the runtime's builder produced with onnx-proto, from the same nodes, initializers and value infos. */
function referenceEncode(g: GraphBuilder, inputs: ValueInfo[], outputs: ValueInfo[]): Uint8Array {
  const A = onnx.AttributeProto.AttributeType;
  const attribute = (name: string, v: number | number[] | string | { float: number }) => {
    if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
    if (typeof v === 'object') return { name, type: A.FLOAT, f: v.float };
    if (Number.isInteger(v)) return { name, type: A.INT, i: v };
    return { name, type: A.FLOAT, f: v };
  };
  const vi = (v: ValueInfo) =>
    onnx.ValueInfoProto.create({
      name: v.name,
      type: {
        tensorType: {
          elemType: v.elemType,
          shape: { dim: v.dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
        },
      },
    });
  const nodes = g.nodes.map((n) =>
    onnx.NodeProto.create({
      opType: n.opType,
      ...(n.domain === undefined ? {} : { domain: n.domain }),
      input: n.input,
      output: n.output,
      name: n.name,
      attribute: n.attribute.map((a) => attribute(a.name, a.value)),
    }),
  );
  const initializers = g.initializers.map((t) => onnx.TensorProto.create({ ...t }));
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      producerName: '@semanticache/runtime',
      graph: onnx.GraphProto.create({
        name: 'g',
        node: nodes,
        input: inputs.map(vi),
        output: outputs.map(vi),
        initializer: initializers,
      }),
      opsetImport: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
    }),
  ).finish();
}

function everyFeature(): { g: GraphBuilder; inputs: ValueInfo[]; outputs: ValueInfo[] } {
  const g = new GraphBuilder();
  const w = g.floatInit(
    'w',
    [3, 4],
    Float32Array.from({ length: 12 }, (_, i) => i / 7 - 0.5),
  );
  const big = g.floatInit('big', [300], new Float32Array(300).fill(-1.25)); // kept by reference, not copied
  const scale = g.scalarInit('scale', 1e-5);
  const q = g.uint8Init(
    'q',
    [2, 1, 16],
    Uint8Array.from({ length: 32 }, (_, i) => i * 7),
  );
  const shape = g.int64Init('shape', [-1, 2, 2 ** 40]);
  const y = g.op('MatMul', ['x', w]);
  const split = g.opMulti('Split', [y, g.int64Init('halves', [2, 2])], [g.fresh('a'), g.fresh('b')], { axis: -1 });
  g.opMulti('SkipSimplifiedLayerNormalization', ['x', 'x', w], ['normed', '', '', 'sum'], {}, 'com.microsoft');
  const m = g.op('Mul', [split[0], scale], {
    empty: [],
    neg: -3,
    big: 2 ** 33,
    eps: 1e-6,
    one: { float: 1 },
    mode: 'näive',
  });
  g.op('MatMulNBits', [m, q, big], { K: 32, N: 2, bits: 4, ints: [-1, 0, 1, 300] }, 'z', 'com.microsoft');
  g.op('Reshape', [split[1], shape], {}, 'out');
  return {
    g,
    inputs: [valueInfo('x', DataType.FLOAT, ['m', 3]), valueInfo('ids', DataType.INT64, [])],
    outputs: [valueInfo('out', DataType.FLOAT, ['m', 'n', 1]), valueInfo('z', DataType.FLOAT, [0, 2 ** 35])],
  };
}

describe('onnx-builder writes the bytes onnx-proto wrote', () => {
  afterEach(() => vi.restoreAllMocks());

  test('every field, attribute kind and varint width the builder uses', () => {
    const { g, inputs, outputs } = everyFeature();
    const bytes = g.encode(inputs, outputs);
    expect(Buffer.from(bytes).equals(Buffer.from(referenceEncode(g, inputs, outputs)))).toBe(true);
    // and onnx-proto reads it back as that model
    const model = onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), { longs: Number, bytes: Array });
    expect(model.irVersion).toBe(8);
    expect(model.opsetImport).toEqual([
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
    ]);
    const mul = model.graph.node.find((n: { opType: string }) => n.opType === 'Mul');
    expect(mul.attribute.map((a: { name: string }) => a.name)).toEqual(['empty', 'neg', 'big', 'eps', 'one', 'mode']);
    expect(mul.attribute[4]).toMatchObject({ type: onnx.AttributeProto.AttributeType.FLOAT, f: 1 });
    expect(mul.attribute[1].i).toBe(-3);
    expect(mul.attribute[2].i).toBe(2 ** 33);
    expect(mul.attribute[3].f).toBeCloseTo(1e-6, 12);
    expect(new TextDecoder().decode(Uint8Array.from(mul.attribute[5].s))).toBe('näive');
    const shape = model.graph.initializer.find((t: { name: string }) => t.name === 'shape');
    expect(Array.from(new BigInt64Array(Uint8Array.from(shape.rawData).buffer))).toEqual([-1n, 2n, 2n ** 40n]);
    expect(model.graph.output[1].type.tensorType.shape.dim).toEqual([{ dimValue: 0 }, { dimValue: 2 ** 35 }]);
  });

  test('every graph buildGraphs makes of the parity models (fused and not, fp32 and int4)', () => {
    const encode = vi.spyOn(GraphBuilder.prototype, 'encode');
    let graphs = 0;
    for (const name of PARITY_MODELS) {
      const dir = parityDir(name);
      const configPath = path.join(dir, 'config.json');
      const config = parseHfConfig(readJson(configPath), configPath);
      const weights = loadHfWeights(dir, config);
      for (const fuse of [true, false]) {
        for (const weightFormat of ['float32', 'int4'] as const) {
          encode.mockClear();
          buildGraphs(config, weights, { fuse, weightFormat });
          expect(encode.mock.calls.length).toBe(fuse ? config.numLayers + 2 : 2 * config.numLayers + 1);
          encode.mock.calls.forEach(([inputs, outputs], i) => {
            const g = encode.mock.contexts[i] as GraphBuilder;
            const ours = encode.mock.results[i].value as Uint8Array;
            expect(Buffer.from(ours).equals(Buffer.from(referenceEncode(g, inputs, outputs)))).toBe(true);
            graphs++;
          });
        }
      }
    }
    expect(graphs).toBeGreaterThan(40);
  });

  test('onnxruntime loads what it writes and runs it', async () => {
    const g = new GraphBuilder();
    const w = g.floatInit('w', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
    const y = g.op('Gemm', ['x', w], { transB: 1, alpha: 0.5 });
    g.op('Reshape', [y, g.int64Init('shape', [-1])], {}, 'y');
    const session = await ort.InferenceSession.create(
      g.encode([valueInfo('x', DataType.FLOAT, ['m', 3])], [valueInfo('y', DataType.FLOAT, ['n'])]),
    );
    const { y: out } = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 0, -1, 2, 2, 2), [2, 3]) });
    expect(Array.from(out.data as Float32Array)).toEqual([-1, -1, 6, 15]);
    await session.release();
  });
});
