// ORT's prepacking of fp32 Gemm weights: what it costs at session creation and what it buys per run, for the
// matrices of a 0.5B model (Qwen2.5-0.5B's MLP shapes and its 151936-row LM head), one row (a decode step's
// product) and 64 rows (a prefill block). The transformer creates the fp32 head unpacked from this measurement.
//   pnpm exec tsx bench/prepack.ts
import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder, valueInfo } from '../src/onnx-builder.js';

const F = DataType.FLOAT;
// [rows (out), columns (in), sessions cycled so that the one-row products read their weights from memory]
const SHAPES: [string, number, number, number][] = [
  ['gate/up', 9728, 896, 12],
  ['down', 896, 4864, 24],
  ['LM head', 151936, 896, 2],
];

function gemm(n: number, k: number): Uint8Array {
  const g = new GraphBuilder();
  const w = Float32Array.from({ length: n * k }, () => (Math.random() - 0.5) * 0.1);
  g.op('Gemm', ['x', g.floatInit('w', [n, k], w)], { transB: 1 }, 'y');
  return g.encode([valueInfo('x', F, ['m', k])], [valueInfo('y', F, ['m', n])]);
}

console.log('| matrix | prepacking | create ms | 1 row µs (GB/s) | 64 rows µs |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, n, k, copies] of SHAPES) {
  const bytes = gemm(n, k);
  const one = new ort.Tensor('float32', new Float32Array(k).fill(0.01), [1, k]);
  const block = new ort.Tensor('float32', new Float32Array(64 * k).fill(0.01), [64, k]);
  for (const prepack of [true, false, true, false]) {
    const options: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: 1,
      extra: { session: { disable_prepacking: prepack ? '0' : '1', intra_op: { allow_spinning: '0' } } },
    };
    let t = performance.now();
    const sessions: ort.InferenceSession[] = [];
    for (let i = 0; i < copies; i++) sessions.push(await ort.InferenceSession.create(bytes, options));
    const create = (performance.now() - t) / copies;
    for (const s of sessions) await s.run({ x: one });
    const rounds = Math.max(2, Math.ceil(40 / copies));
    t = performance.now();
    for (let r = 0; r < rounds; r++) for (const s of sessions) await s.run({ x: one });
    const row = ((performance.now() - t) / (rounds * copies)) * 1000;
    t = performance.now();
    for (const s of sessions) await s.run({ x: block });
    const rows64 = ((performance.now() - t) / copies) * 1000;
    const gbs = (n * k * 4) / row / 1e3;
    console.log(
      `| ${name} ${n}×${k} | ${prepack ? 'on' : 'off'} | ${create.toFixed(0)} | ${row.toFixed(0)} (${gbs.toFixed(1)}) | ${rows64.toFixed(0)} |`,
    );
    for (const s of sessions) await s.release();
  }
}
