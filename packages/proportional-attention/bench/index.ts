// Decode bandwidth against this machine's measured memory bandwidth, speed-up over plain TypeScript, and causal
// prefill throughput. Run: pnpm bench   (options: --quick for a short run)
import os from 'node:os';
import {
  bandwidthProbe,
  decode,
  float32ArrayToFloat16Bits,
  getThreads,
  type HeadCache,
  prefill,
  referenceAttention,
  setThreads,
  simdLevel,
} from '../src/index.js';

const quick = process.argv.includes('--quick');

function randomArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return a;
}

function makeLayer(Hkv: number, n: number, d: number, dtype: 'fp32' | 'fp16', seed: number): HeadCache[] {
  return Array.from({ length: Hkv }, (_, g) => {
    const keys = randomArray(n * d, seed * 100 + g * 2 + 1);
    const values = randomArray(n * d, seed * 100 + g * 2 + 2);
    const logSizes = new Float32Array(n);
    for (let j = 0; j < n; j++) logSizes[j] = Math.log(1 + (j % 4));
    return dtype === 'fp32'
      ? { keys, values, logSizes, length: n }
      : { keys: float32ArrayToFloat16Bits(keys), values: float32ArrayToFloat16Bits(values), logSizes, length: n };
  });
}

/** Median seconds per call of fn, run for about `budget` seconds after a warm-up. */
function timeIt(fn: () => void, budget = quick ? 0.15 : 0.4, maxRuns = 2000): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxRuns && (performance.now() - start) / 1000 < budget) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Plain TypeScript decode (fp32, one pass with an online softmax): the speed baseline, not the float64 oracle. */
function plainDecode(q: Float32Array, heads: HeadCache[], H: number, d: number, out: Float32Array): void {
  const group = H / heads.length;
  const scale = 1 / Math.sqrt(d);
  for (let i = 0; i < H; i++) {
    const { keys, values, logSizes, length } = heads[Math.floor(i / group)] as {
      keys: Float32Array;
      values: Float32Array;
      logSizes: Float32Array;
      length: number;
    };
    const qo = i * d;
    let max = Number.NEGATIVE_INFINITY;
    let sum = 0;
    const acc = new Float32Array(d);
    for (let j = 0; j < length; j++) {
      let dot = 0;
      const ko = j * d;
      for (let k = 0; k < d; k++) dot += q[qo + k] * keys[ko + k];
      const s = dot * scale + logSizes[j];
      if (s > max) {
        const alpha = Math.exp(max - s);
        sum *= alpha;
        for (let k = 0; k < d; k++) acc[k] *= alpha;
        max = s;
      }
      const p = Math.exp(s - max);
      sum += p;
      for (let k = 0; k < d; k++) acc[k] += p * values[ko + k];
    }
    for (let k = 0; k < d; k++) out[qo + k] = acc[k] / sum;
  }
}

const shapes = [
  { name: 'demo 6q/6kv×64', H: 6, Hkv: 6, d: 64 },
  { name: 'llama3-8b 32q/8kv×128', H: 32, Hkv: 8, d: 128 },
  { name: 'qwen2.5-0.5b 14q/2kv×64', H: 14, Hkv: 2, d: 64 },
];
const lengths = quick ? [1024, 4096, 16384] : [1024, 4096, 16384, 65536];
const threads = getThreads();

// The machine is shared: bandwidth is re-measured right before every row, with the same thread count, so each
// ratio compares numbers taken under the same load.
const probeNow = (n: number) => {
  setThreads(n);
  const { readGBps } = bandwidthProbe({ megabytes: 128, repeats: quick ? 2 : 4 });
  setThreads(threads);
  return readGBps;
};
const startProbe = bandwidthProbe({ megabytes: 256, repeats: quick ? 3 : 8 });
console.log(
  `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, load average ${os.loadavg()[0].toFixed(1)}; ` +
    `kernels: ${simdLevel()}, threads: ${threads}`,
);
console.log(
  `memory bandwidth at start (native, 256 MiB, ${threads} threads): read ${startProbe.readGBps.toFixed(1)} GB/s, ` +
    `copy ${startProbe.copyGBps.toFixed(1)} GB/s`,
);
console.log('decode: GB/s of keys+values read per call, cycling over enough layers to exceed the L3 cache');
console.log(
  '| shape | dtype | n | µs/call | GB/s | read BW | % | 1-thread GB/s | 1-thread read BW | % | plain TS µs | speed-up | f64 reference µs |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');

for (const shape of shapes) {
  for (const dtype of ['fp32', 'fp16'] as const) {
    for (const n of lengths) {
      const elem = dtype === 'fp32' ? 4 : 2;
      const layerBytes = shape.Hkv * n * shape.d * elem * 2;
      const numLayers = Math.min(32, Math.max(1, Math.ceil((96 << 20) / layerBytes)));
      const layers = Array.from({ length: numLayers }, (_, l) => makeLayer(shape.Hkv, n, shape.d, dtype, l + 1));
      const q = randomArray(shape.H * shape.d, 7);
      const out = new Float32Array(shape.H * shape.d);
      let next = 0;
      const step = () => {
        decode({ q, heads: layers[next], numHeads: shape.H, headDim: shape.d, out });
        next = (next + 1) % numLayers;
      };
      const bandwidth = probeNow(threads);
      const seconds = timeIt(step);
      const bandwidth1 = probeNow(1);
      setThreads(1);
      const seconds1 = timeIt(step);
      setThreads(threads);
      let plain = '';
      let speedup = '';
      let oracle = '';
      if (dtype === 'fp32' && n <= 16384) {
        // Same working set as the native rows: cycle over the layers too.
        const plainSeconds = timeIt(
          () => {
            plainDecode(q, layers[next], shape.H, shape.d, out);
            next = (next + 1) % numLayers;
          },
          0.3,
          20,
        );
        plain = (plainSeconds * 1e6).toFixed(0);
        speedup = `${(plainSeconds / seconds).toFixed(1)}×`;
        if (n <= 4096) {
          const args = { q, heads: layers[0], numHeads: shape.H, headDim: shape.d };
          oracle = (timeIt(() => referenceAttention(args), 0.3, 5) * 1e6).toFixed(0);
        }
      }
      const gbps = layerBytes / seconds / 1e9;
      const gbps1 = layerBytes / seconds1 / 1e9;
      console.log(
        `| ${shape.name} | ${dtype} | ${n} | ${(seconds * 1e6).toFixed(1)} | ${gbps.toFixed(1)} | ` +
          `${bandwidth.toFixed(1)} | ${((100 * gbps) / bandwidth).toFixed(0)} % | ${gbps1.toFixed(1)} | ` +
          `${bandwidth1.toFixed(1)} | ${((100 * gbps1) / bandwidth1).toFixed(0)} % | ${plain} | ${speedup} | ${oracle} |`,
      );
    }
  }
}

console.log('\nprefill: causal over the whole sequence in blocks of 512 (fp32 cache)');
console.log('| shape | tokens | seconds | tokens/s | GFLOP/s |');
console.log('| --- | --- | --- | --- | --- |');
const block = 512;
for (const shape of shapes) {
  for (const total of quick ? [4096] : [4096, 16384]) {
    const heads = makeLayer(shape.Hkv, total, shape.d, 'fp32', 9);
    const q = randomArray(block * shape.H * shape.d, 11);
    const out = new Float32Array(q.length);
    const t0 = performance.now();
    for (let end = block; end <= total; end += block) {
      const view = heads.map((h) => ({ ...h, length: end }));
      prefill({ q, heads: view, numHeads: shape.H, headDim: shape.d, blockLength: block, out });
    }
    const seconds = (performance.now() - t0) / 1000;
    // q·k and p·v: 4·d flops per (query head, visible key) pair; total pairs ≈ H · total² / 2.
    const flops = 4 * shape.d * shape.H * ((total * (total + 1)) / 2);
    console.log(
      `| ${shape.name} | ${total} | ${seconds.toFixed(2)} | ${(total / seconds).toFixed(0)} | ${(flops / seconds / 1e9).toFixed(1)} |`,
    );
  }
}
