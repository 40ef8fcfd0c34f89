import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from './config.js';
import { EmbeddingTable, type StoredEmbedding } from './embedding.js';
import { ModelLoadError } from './errors.js';
import { SafetensorsFile, type StoredFloat } from './safetensors.js';

/** One decoder layer, fp32, matrices row-major `[out][in]` as stored by PyTorch's nn.Linear. */
export interface LayerWeights {
  inputNorm: Float32Array;
  /** q, k and v projections stacked: `[(H + 2·Hkv)·d][hidden]`; one GEMM instead of three. */
  qkv: Float32Array;
  qkvBias: Float32Array | undefined;
  o: Float32Array;
  oBias: Float32Array | undefined;
  postNorm: Float32Array;
  /** gate and up projections stacked: `[2·I][hidden]`. */
  gateUp: Float32Array;
  gateUpBias: Float32Array | undefined;
  down: Float32Array;
  downBias: Float32Array | undefined;
}

export interface ModelWeights {
  embed: Float32Array;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  /** The same array as `embed` when embeddings are tied. */
  lmHead: Float32Array;
}

export function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Tensor source over one or several safetensors files (sharded checkpoints go through the index). */
class TensorSource {
  private files = new Map<string, SafetensorsFile>();
  private where = new Map<string, SafetensorsFile>();
  /** The index or the single safetensors file: what errors about the whole checkpoint name. */
  readonly label: string = '';

  constructor(dir: string) {
    const indexPath = path.join(dir, 'model.safetensors.index.json');
    const singlePath = path.join(dir, 'model.safetensors');
    try {
      if (existsSync(indexPath)) {
        let index: { weight_map?: Record<string, string> };
        try {
          index = JSON.parse(readFileSync(indexPath, 'utf8'));
        } catch (cause) {
          throw new ModelLoadError('index is not valid JSON', { file: indexPath, cause });
        }
        if (!index.weight_map || typeof index.weight_map !== 'object') {
          throw new ModelLoadError('index has no weight_map', { file: indexPath });
        }
        for (const [tensor, shard] of Object.entries(index.weight_map)) {
          if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
            throw new ModelLoadError(`invalid shard name ${JSON.stringify(shard)}`, { file: indexPath, tensor });
          }
          let file = this.files.get(shard);
          if (!file) {
            file = new SafetensorsFile(path.join(dir, shard));
            this.files.set(shard, file);
          }
          if (!file.has(tensor)) {
            throw new ModelLoadError('tensor listed in the index is missing from its shard', {
              file: file.path,
              tensor,
            });
          }
          this.where.set(tensor, file);
        }
        // A tensor a shard holds but the index does not list is still part of the checkpoint (HF loads whole shards):
        // it takes part in the unused-tensor check like any other.
        for (const file of this.files.values()) {
          for (const name of file.tensors.keys()) if (!this.where.has(name)) this.where.set(name, file);
        }
        this.label = indexPath;
      } else if (existsSync(singlePath)) {
        const file = new SafetensorsFile(singlePath);
        this.files.set('model.safetensors', file);
        for (const name of file.tensors.keys()) this.where.set(name, file);
        this.label = singlePath;
      } else {
        throw new ModelLoadError('no model.safetensors or model.safetensors.index.json', { file: dir });
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  /** Every tensor name in the checkpoint. */
  names(): string[] {
    return [...this.where.keys()];
  }

  /** The bytes of every tensor as stored. */
  storedBytes(): number {
    let bytes = 0;
    for (const [name, file] of this.where) {
      const info = file.tensors.get(name);
      if (info) bytes += info.end - info.begin;
    }
    return bytes;
  }

  /** The stored shape of a tensor, or undefined if the checkpoint lacks it. */
  shape(name: string): number[] | undefined {
    return this.where.get(name)?.tensors.get(name)?.shape;
  }

  /** Reads `name`, which must have `shape`, widened to fp32 into `dst` (exactly its size); rejects non-finite values. */
  readInto(name: string, shape: number[], dst: Float32Array): void {
    const file = this.fileWith(name, shape);
    const bad = file.readFloat32Into(name, dst);
    if (bad >= 0) throw new ModelLoadError(`non-finite value at element ${bad}`, { file: file.path, tensor: name });
  }

  /** Reads `name`, which must have `shape`, as it is stored; rejects non-finite values. */
  readStored(name: string, shape: number[]): StoredFloat {
    const file = this.fileWith(name, shape);
    const { stored, firstNonFinite } = file.readStored(name);
    if (firstNonFinite >= 0) {
      throw new ModelLoadError(`non-finite value at element ${firstNonFinite}`, { file: file.path, tensor: name });
    }
    return stored;
  }

  private fileWith(name: string, shape: number[]): SafetensorsFile {
    const file = this.where.get(name);
    if (!file)
      throw new ModelLoadError('tensor not found in the checkpoint', {
        file: [...this.files.values()][0]?.path,
        tensor: name,
      });
    const info = file.tensors.get(name);
    if (!info || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new ModelLoadError(
        `shape ${JSON.stringify(info?.shape)} does not match the expected ${JSON.stringify(shape)}`,
        {
          file: file.path,
          tensor: name,
        },
      );
    }
    return file;
  }

  close(): void {
    for (const f of this.files.values()) f.close();
  }
}

/** The tensors a config implies for an HF checkpoint, each with the shape it must have, in load order. */
export interface HfTensorPlan {
  /** Must be present with this shape. */
  required: Map<string, number[]>;
  /** May be present (then with this shape); never read. */
  optional: Map<string, number[]>;
}

/**
 * What an HF checkpoint must, may and must not hold for `config`. The weights must match the config exactly, since
 * a config that disagrees with them (one layer too few, a bias it does not enable) would otherwise run as garbage:
 *
 * - required: `model.embed_tokens.weight`, `model.norm.weight`, and for each of the config's `num_hidden_layers`
 *   layers the two norms, q/k/v/o and gate/up/down projections; `lm_head.weight` unless `tie_word_embeddings`;
 *   biases exactly where the config enables them (q/k/v for qwen2 or `attention_bias`, o for `attention_bias` on
 *   llama/mistral, gate/up/down for `mlp_bias`).
 * - optional: `lm_head.weight` when `tie_word_embeddings` is true (tied checkpoints sometimes still store the copy;
 *   the head is the embedding matrix, as in HF). Its shape is still checked.
 * - ignored: rotary `inv_freq` buffers that older transformers versions saved (`model.rotary_emb.inv_freq`,
 *   `model.layers.<l>.self_attn.rotary_emb.inv_freq` for a layer of the config): RoPE is computed from the config.
 *
 * Anything else is unused and an error, including a bias the config does not enable (dropping it changes the model)
 * and the tensors of a layer past `num_hidden_layers`.
 */
export function hfTensorPlan(config: ModelConfig): HfTensorPlan {
  const { hiddenSize: h, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V } = config;
  const required = new Map<string, number[]>();
  const optional = new Map<string, number[]>();
  required.set('model.embed_tokens.weight', [V, h]);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    required.set(`${p}input_layernorm.weight`, [h]);
    for (const [proj, rows] of [
      ['q', H * d],
      ['k', Hkv * d],
      ['v', Hkv * d],
    ] as const) {
      required.set(`${p}self_attn.${proj}_proj.weight`, [rows, h]);
      if (config.qkvBias) required.set(`${p}self_attn.${proj}_proj.bias`, [rows]);
    }
    required.set(`${p}self_attn.o_proj.weight`, [h, H * d]);
    if (config.oBias) required.set(`${p}self_attn.o_proj.bias`, [h]);
    required.set(`${p}post_attention_layernorm.weight`, [h]);
    required.set(`${p}mlp.gate_proj.weight`, [I, h]);
    required.set(`${p}mlp.up_proj.weight`, [I, h]);
    required.set(`${p}mlp.down_proj.weight`, [h, I]);
    if (config.mlpBias) {
      required.set(`${p}mlp.gate_proj.bias`, [I]);
      required.set(`${p}mlp.up_proj.bias`, [I]);
      required.set(`${p}mlp.down_proj.bias`, [h]);
    }
  }
  required.set('model.norm.weight', [h]);
  (config.tieWordEmbeddings ? optional : required).set('lm_head.weight', [V, h]);
  return { required, optional };
}

const LAYER_NAME = /^model\.layers\.(\d+)\./;
const LAYER_INV_FREQ = /^model\.layers\.(\d+)\.self_attn\.rotary_emb\.inv_freq$/;

function layerOf(name: string): number | undefined {
  const m = LAYER_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Stored tensors that are neither required nor optional but harmless to skip (see {@link hfTensorPlan}). */
function isIgnorable(name: string, numLayers: number): boolean {
  if (name === 'model.rotary_emb.inv_freq') return true;
  const m = LAYER_INV_FREQ.exec(name);
  return m !== null && Number(m[1]) < numLayers;
}

const LISTED = 10;
const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Up to {@link LISTED} entries, then a count of the rest. The tensors of a layer that `whole(l)` marks as wholly
 * missing or wholly unused collapse into one `model.layers.<l>.* (n tensors)` entry.
 */
function listNames(names: string[], whole: (layer: number) => boolean): string {
  const entries: { text: string; count: number }[] = [];
  const grouped = new Map<number, { text: string; count: number }>();
  for (const name of names) {
    const l = layerOf(name);
    if (l !== undefined && whole(l)) {
      let g = grouped.get(l);
      if (!g) {
        g = { text: `model.layers.${l}.*`, count: 0 };
        grouped.set(l, g);
        entries.push(g);
      }
      g.count++;
    } else {
      entries.push({ text: name, count: 1 });
    }
  }
  for (const g of grouped.values()) g.text += ` (${plural(g.count, 'tensor')})`;
  const shown = entries.slice(0, LISTED);
  const rest = names.length - shown.reduce((n, e) => n + e.count, 0);
  return shown.map((e) => e.text).join(', ') + (rest > 0 ? `, … and ${rest} more` : '');
}

/**
 * Compares the checkpoint's tensor names and shapes with what the config implies ({@link hfTensorPlan}) before any
 * data is read; one ModelLoadError lists every missing, wrongly shaped and unused tensor.
 */
function checkAgainstConfig(src: TensorSource, config: ModelConfig): void {
  const { required, optional } = hfTensorPlan(config);
  const missing: string[] = [];
  const misshaped: string[] = [];
  for (const [name, want] of [...required, ...optional]) {
    const got = src.shape(name);
    if (!got) {
      if (required.has(name)) missing.push(name);
    } else if (got.length !== want.length || got.some((n, i) => n !== want[i])) {
      misshaped.push(name);
    }
  }
  const stored = src.names();
  const unused = stored
    .filter((n) => !required.has(n) && !optional.has(n) && !isIgnorable(n, config.numLayers))
    .sort(byName);
  if (missing.length === 0 && misshaped.length === 0 && unused.length === 0) return;

  const storedLayers = new Set(stored.map(layerOf).filter((l) => l !== undefined));
  const parts: string[] = [];
  if (missing.length > 0) {
    parts.push(`${plural(missing.length, 'missing tensor')}: ${listNames(missing, (l) => !storedLayers.has(l))}`);
  }
  if (misshaped.length > 0) {
    const shown = misshaped.slice(0, LISTED).map((name) => {
      const want = required.get(name) ?? optional.get(name);
      return `${name}: shape ${JSON.stringify(src.shape(name))} does not match the expected ${JSON.stringify(want)}`;
    });
    const rest = misshaped.length - shown.length;
    parts.push(
      `${plural(misshaped.length, 'tensor')} with the wrong shape: ${shown.join(', ')}${rest > 0 ? `, … and ${rest} more` : ''}`,
    );
  }
  if (unused.length > 0) {
    parts.push(`${plural(unused.length, 'unused tensor')}: ${listNames(unused, (l) => l >= config.numLayers)}`);
  }
  const hints: string[] = [];
  const topLayer = Math.max(-1, ...storedLayers);
  if (topLayer >= 0 && topLayer + 1 !== config.numLayers) {
    hints.push(`the weights have layers 0–${topLayer} but num_hidden_layers is ${config.numLayers}`);
  }
  const inRange = (n: string) => (layerOf(n) ?? config.numLayers) < config.numLayers;
  if (unused.some((n) => n.endsWith('.bias') && inRange(n))) {
    hints.push('the config does not enable some of the stored biases (attention_bias / mlp_bias)');
  }
  throw new ModelLoadError(
    `the weights do not match config.json: ${parts.join('; ')}${hints.length > 0 ? ` (${hints.join('; ')})` : ''}`,
    { file: src.label, tensor: missing[0] ?? misshaped[0] ?? unused[0] },
  );
}

/** Arrays up to this many elements (any layer's tensors) are recycled by {@link StreamedWeights.release}. */
const RECYCLED_MAX = 64 * 1024 * 1024;

const elements = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * A checkpoint's weights read on demand: each tensor is read (and widened to fp32) when a field is first touched and
 * kept until `release()`, which recycles the arrays for the next tensors of the same size. A loader that builds one
 * graph at a time and releases after each holds one graph's fp32 weights in JS, never the whole model's.
 */
export interface StreamedWeights extends ModelWeights, StoredEmbedding {
  /** The bytes of the checkpoint's tensors as stored. */
  readonly storedBytes: number;
  /** Drops every tensor read so far; arrays handed out before may be overwritten by later reads. */
  release(): void;
  close(): void;
}

class HfStreamedWeights implements StreamedWeights {
  readonly layers: LayerWeights[];
  readonly storedBytes: number;
  private held = new Map<string, Float32Array>();
  private spare = new Map<number, Float32Array[]>();

  constructor(
    private src: TensorSource,
    private config: ModelConfig,
  ) {
    this.layers = Array.from({ length: config.numLayers }, (_, l) => this.layer(l));
    this.storedBytes = src.storedBytes();
  }

  get embed(): Float32Array {
    return this.tensor('model.embed_tokens.weight', [this.config.vocabSize, this.config.hiddenSize]);
  }

  embeddingTable(): EmbeddingTable {
    const { vocabSize: V, hiddenSize: h } = this.config;
    return new EmbeddingTable(this.src.readStored('model.embed_tokens.weight', [V, h]), V, h);
  }

  get finalNorm(): Float32Array {
    return this.tensor('model.norm.weight', [this.config.hiddenSize]);
  }

  // Some tied checkpoints still store lm_head.weight; the config decides.
  get lmHead(): Float32Array {
    const { tieWordEmbeddings, vocabSize: V, hiddenSize: h } = this.config;
    return tieWordEmbeddings ? this.embed : this.tensor('lm_head.weight', [V, h]);
  }

  release(): void {
    for (const t of this.held.values()) {
      if (t.length > RECYCLED_MAX) continue;
      const list = this.spare.get(t.length);
      if (list) list.push(t);
      else this.spare.set(t.length, [t]);
    }
    this.held.clear();
  }

  close(): void {
    this.held.clear();
    this.spare.clear();
    this.src.close();
  }

  /** The tensors `parts` (name, shape) stacked row-wise into one array, read straight into their rows. */
  private stacked(key: string, parts: [string, number[]][]): Float32Array {
    let t = this.held.get(key);
    if (!t) {
      const length = parts.reduce((n, [, shape]) => n + elements(shape), 0);
      t = this.spare.get(length)?.pop() ?? new Float32Array(length);
      let at = 0;
      for (const [name, shape] of parts) {
        const n = elements(shape);
        this.src.readInto(name, shape, t.subarray(at, at + n));
        at += n;
      }
      this.held.set(key, t);
    }
    return t;
  }

  private tensor(name: string, shape: number[]): Float32Array {
    return this.stacked(name, [[name, shape]]);
  }

  private layer(l: number): LayerWeights {
    const { hiddenSize: h, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I } = this.config;
    const { qkvBias, oBias, mlpBias } = this.config;
    const p = `model.layers.${l}.`;
    const qkv = (kind: 'weight' | 'bias') =>
      (
        [
          ['q', H * d],
          ['k', Hkv * d],
          ['v', Hkv * d],
        ] as const
      ).map(([proj, rows]): [string, number[]] => [
        `${p}self_attn.${proj}_proj.${kind}`,
        kind === 'weight' ? [rows, h] : [rows],
      ]);
    const self = this;
    return {
      get inputNorm() {
        return self.tensor(`${p}input_layernorm.weight`, [h]);
      },
      get qkv() {
        return self.stacked(`${p}qkv.weight`, qkv('weight'));
      },
      get qkvBias() {
        return qkvBias ? self.stacked(`${p}qkv.bias`, qkv('bias')) : undefined;
      },
      get o() {
        return self.tensor(`${p}self_attn.o_proj.weight`, [h, H * d]);
      },
      get oBias() {
        return oBias ? self.tensor(`${p}self_attn.o_proj.bias`, [h]) : undefined;
      },
      get postNorm() {
        return self.tensor(`${p}post_attention_layernorm.weight`, [h]);
      },
      get gateUp() {
        return self.stacked(`${p}gate_up.weight`, [
          [`${p}mlp.gate_proj.weight`, [I, h]],
          [`${p}mlp.up_proj.weight`, [I, h]],
        ]);
      },
      get gateUpBias() {
        return mlpBias
          ? self.stacked(`${p}gate_up.bias`, [
              [`${p}mlp.gate_proj.bias`, [I]],
              [`${p}mlp.up_proj.bias`, [I]],
            ])
          : undefined;
      },
      get down() {
        return self.tensor(`${p}mlp.down_proj.weight`, [h, I]);
      },
      get downBias() {
        return mlpBias ? self.tensor(`${p}mlp.down_proj.bias`, [h]) : undefined;
      },
    };
  }
}

/**
 * Opens an HF Llama / Mistral / Qwen2 checkpoint folder for streaming: the tensor names and shapes are checked
 * against the config here (no data read); the tensors are read, widened to fp32 and checked for non-finite values as
 * they are touched.
 */
export function openHfWeights(dir: string, config: ModelConfig): StreamedWeights {
  const src = new TensorSource(dir);
  try {
    checkAgainstConfig(src, config);
  } catch (err) {
    src.close();
    throw err;
  }
  return new HfStreamedWeights(src, config);
}

/** Loads the weights of an HF Llama / Mistral / Qwen2 checkpoint folder as fp32, all at once. */
export function loadHfWeights(dir: string, config: ModelConfig): ModelWeights {
  const weights = openHfWeights(dir, config);
  try {
    const layers = weights.layers.map(
      (l): LayerWeights => ({
        inputNorm: l.inputNorm,
        qkv: l.qkv,
        qkvBias: l.qkvBias,
        o: l.o,
        oBias: l.oBias,
        postNorm: l.postNorm,
        gateUp: l.gateUp,
        gateUpBias: l.gateUpBias,
        down: l.down,
        downBias: l.downBias,
      }),
    );
    return { embed: weights.embed, layers, finalNorm: weights.finalNorm, lmHead: weights.lmHead };
  } finally {
    weights.close();
  }
}
