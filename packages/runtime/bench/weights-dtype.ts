// fp32 weights vs fp16 weights + Cast on this CPU: the demo model's MLP shapes (384 → 2·1024 → 384) and its LM head
// (384 → 8192), one token (decode) and 512 tokens (a prefill block). With ORT's optimizations on, the Cast of an fp16
// initializer is constant-folded back to fp32 at load (same speed and memory as converting at load); keeping the
// weights fp16 in memory needs optimizations off, so that is what the fp16 variant measures.
//   pnpm exec tsx bench/weights-dtype.ts
import * as ort from 'onnxruntime-node';
import { GraphBuilder, valueInfo } from '../src/onnx-builder.js';

const FLOAT16 = 10;

function toHalfBits(x: Float32Array): Uint16Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  return Uint16Array.from(x, (v) => {
    f[0] = v;
    const b = u[0];
    const exp = ((b >>> 23) & 0xff) - 127 + 15;
    const sign = (b >>> 16) & 0x8000;
    if (exp <= 0) return sign;
    return sign | (exp << 10) | ((b >>> 13) & 0x3ff);
  });
}

function graph(half: boolean): Uint8Array {
  const g = new GraphBuilder();
  const shapes: [string, number, number][] = [
    ['gate_up', 2048, 384],
    ['down', 384, 1024],
    ['head', 8192, 384],
  ];
  const weight = (name: string, rows: number, cols: number) => {
    const w = Float32Array.from({ length: rows * cols }, () => (Math.random() - 0.5) * 0.1);
    if (!half) return g.floatInit(name, [rows, cols], w);
    const bits = toHalfBits(w);
    return g.op('Cast', [g.rawInit(`${name}_f16`, FLOAT16, [rows, cols], new Uint8Array(bits.buffer))], { to: 1 });
  };
  const gu = g.op('Gemm', ['x', weight(...shapes[0])], { transB: 1 });
  const first = g.fresh('a');
  const second = g.fresh('b');
  g.opMulti('Split', [gu, g.int64Init('split', [1024, 1024])], [first, second], { axis: 1 });
  const down = g.op('Gemm', [g.op('Mul', [first, second]), weight(...shapes[1])], { transB: 1 });
  g.op('Gemm', [down, weight(...shapes[2])], { transB: 1 }, 'y');
  return g.encode([valueInfo('x', 1, ['m', 384])], [valueInfo('y', 1, ['m', 8192])]);
}

async function time(session: ort.InferenceSession, m: number, reps: number): Promise<number> {
  const x = new ort.Tensor('float32', new Float32Array(m * 384).fill(0.1), [m, 384]);
  await session.run({ x });
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await session.run({ x });
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

const base = { intraOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } };
const fp32 = await ort.InferenceSession.create(graph(false), { ...base, graphOptimizationLevel: 'all' });
const folded = await ort.InferenceSession.create(graph(true), { ...base, graphOptimizationLevel: 'all' });
const fp16 = await ort.InferenceSession.create(graph(true), { ...base, graphOptimizationLevel: 'disabled' });
console.log('| weights | m = 1 (ms, median) | m = 512 (ms, median) |\n| --- | --- | --- |');
for (const [label, s] of [
  ['fp32 initializers', fp32],
  ['fp16 + Cast, optimizations on (Cast folded at load)', folded],
  ['fp16 + Cast, optimizations off (kept fp16)', fp16],
] as const) {
  const results: number[] = [];
  for (const m of [1, 512]) results.push(await time(s, m, m === 1 ? 200 : 20));
  console.log(`| ${label} | ${results[0].toFixed(3)} | ${results[1].toFixed(2)} |`);
}
