/**
 * Token sampling, bit-compatible with llama2.c's run.c: xorshift64* PRNG, fp32 temperature scaling and softmax,
 * multinomial draw over the CDF or nucleus (top-p) sampling with run.c's cutoff, stable sort and cut rule.
 * top-k (not in run.c) keeps the k largest logits before the softmax; 0 disables it.
 */
export interface SamplerOptions {
  /** 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** 0 = off. Default 0. */
  topK?: number;
  /** Nucleus mass in (0, 1); 1 (default) or 0 = off. */
  topP?: number;
  /** PRNG seed, an integer ≥ 1; a random one when omitted. */
  seed?: number;
}

const MASK64 = (1n << 64n) - 1n;
const f = Math.fround;

/** run.c's xorshift64* generator. */
export class XorShift64Star {
  private state: bigint;
  constructor(seed: number | bigint) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }
  nextU32(): number {
    let s = this.state;
    s ^= s >> 12n;
    s = (s ^ (s << 25n)) & MASK64;
    s ^= s >> 27n;
    this.state = s;
    return Number(((s * 0x2545f4914f6cdd1dn) & MASK64) >> 32n);
  }
  /** float32 in [0, 1) */
  nextFloat(): number {
    return f((this.nextU32() >>> 8) / 16777216);
  }
}

function checkRange(name: string, v: number, lo: number, hi: number, integer = false): number {
  if (typeof v !== 'number' || Number.isNaN(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    throw new RangeError(
      `${name}: expected ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got ${String(v)}`,
    );
  }
  return v;
}

export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  private rng: XorShift64Star;
  private probs = new Float32Array(0);
  private order = new Int32Array(0);

  constructor(options: SamplerOptions = {}) {
    this.temperature = checkRange('temperature', options.temperature ?? 1, 0, 100);
    this.topK = checkRange('topK', options.topK ?? 0, 0, 2 ** 31 - 1, true);
    this.topP = checkRange('topP', options.topP ?? 1, 0, 1);
    const seed = options.seed ?? 1 + Math.floor(Math.random() * (2 ** 32 - 1));
    // xorshift's state must not be 0 (it would stay 0 forever)
    this.rng = new XorShift64Star(checkRange('seed', seed, 1, Number.MAX_SAFE_INTEGER, true));
  }

  sample(logits: Float32Array): number {
    const n = logits.length;
    if (this.temperature === 0) return argmax(logits);
    if (this.probs.length !== n) {
      this.probs = new Float32Array(n);
      this.order = new Int32Array(n);
    }
    const p = this.probs;
    const t = f(this.temperature);
    for (let i = 0; i < n; i++) p[i] = f(logits[i] / t);
    if (this.topK > 0 && this.topK < n) keepTopK(p, this.topK);
    softmaxF32(p);
    const coin = this.rng.nextFloat();
    if (this.topP <= 0 || this.topP >= 1) return sampleCdf(p, coin);
    return this.sampleTopP(p, coin);
  }

  private sampleTopP(p: Float32Array, coin: number): number {
    const n = p.length;
    const topP = f(this.topP);
    const cutoff = f(f(1 - topP) / (n - 1));
    let count = 0;
    for (let i = 0; i < n; i++) if (p[i] >= cutoff) this.order[count++] = i;
    const kept = Array.from(this.order.subarray(0, count));
    kept.sort((a, b) => p[b] - p[a]); // stable, like glibc's merge-sort qsort
    let cumulative = 0;
    let lastIdx = count - 1;
    for (let i = 0; i < count; i++) {
      cumulative = f(cumulative + p[kept[i]]);
      if (cumulative > topP) {
        lastIdx = i;
        break;
      }
    }
    const r = f(coin * cumulative);
    let cdf = 0;
    for (let i = 0; i <= lastIdx; i++) {
      cdf = f(cdf + p[kept[i]]);
      if (r < cdf) return kept[i];
    }
    return kept[lastIdx];
  }
}

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

function keepTopK(x: Float32Array, k: number): void {
  const sorted = Float32Array.from(x).sort();
  const threshold = sorted[x.length - k];
  for (let i = 0; i < x.length; i++) if (x[i] < threshold) x[i] = Number.NEGATIVE_INFINITY;
}

function softmaxF32(x: Float32Array): void {
  let max = x[0];
  for (let i = 1; i < x.length; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    x[i] = f(Math.exp(f(x[i] - max)));
    sum = f(sum + x[i]);
  }
  for (let i = 0; i < x.length; i++) x[i] = f(x[i] / sum);
}

function sampleCdf(p: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < p.length; i++) {
    cdf = f(cdf + p[i]);
    if (coin < cdf) return i;
  }
  return p.length - 1;
}

/** log-softmax of one row, in fp64. */
export function logSoftmaxAt(row: Float32Array, index: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return row[index] - max - Math.log(sum);
}
