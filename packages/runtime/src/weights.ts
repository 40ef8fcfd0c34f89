import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from './config.js';
import { ModelLoadError } from './errors.js';
import { SafetensorsFile } from './safetensors.js';

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
      } else if (existsSync(singlePath)) {
        const file = new SafetensorsFile(singlePath);
        this.files.set('model.safetensors', file);
        for (const name of file.tensors.keys()) this.where.set(name, file);
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

  read(name: string, shape: number[]): Float32Array {
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
    const { data } = file.readFloat32(name);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new ModelLoadError(`non-finite value at element ${i}`, { file: file.path, tensor: name });
      }
    }
    return data;
  }

  close(): void {
    for (const f of this.files.values()) f.close();
  }
}

/** Loads the weights of an HF Llama / Mistral / Qwen2 checkpoint folder as fp32. */
export function loadHfWeights(dir: string, config: ModelConfig): ModelWeights {
  const src = new TensorSource(dir);
  try {
    const { hiddenSize: h, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V } = config;
    const optional = (name: string, shape: number[], wanted: boolean) => (wanted ? src.read(name, shape) : undefined);
    const layers: LayerWeights[] = [];
    for (let l = 0; l < config.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const qkvBias = config.qkvBias
        ? concatRows([
            src.read(`${p}self_attn.q_proj.bias`, [H * d]),
            src.read(`${p}self_attn.k_proj.bias`, [Hkv * d]),
            src.read(`${p}self_attn.v_proj.bias`, [Hkv * d]),
          ])
        : undefined;
      const gateBias = optional(`${p}mlp.gate_proj.bias`, [I], config.mlpBias);
      const upBias = optional(`${p}mlp.up_proj.bias`, [I], config.mlpBias);
      layers.push({
        inputNorm: src.read(`${p}input_layernorm.weight`, [h]),
        qkv: concatRows([
          src.read(`${p}self_attn.q_proj.weight`, [H * d, h]),
          src.read(`${p}self_attn.k_proj.weight`, [Hkv * d, h]),
          src.read(`${p}self_attn.v_proj.weight`, [Hkv * d, h]),
        ]),
        qkvBias,
        o: src.read(`${p}self_attn.o_proj.weight`, [h, H * d]),
        oBias: optional(`${p}self_attn.o_proj.bias`, [h], config.oBias),
        postNorm: src.read(`${p}post_attention_layernorm.weight`, [h]),
        gateUp: concatRows([src.read(`${p}mlp.gate_proj.weight`, [I, h]), src.read(`${p}mlp.up_proj.weight`, [I, h])]),
        gateUpBias: gateBias && upBias ? concatRows([gateBias, upBias]) : undefined,
        down: src.read(`${p}mlp.down_proj.weight`, [h, I]),
        downBias: optional(`${p}mlp.down_proj.bias`, [h], config.mlpBias),
      });
    }
    const embed = src.read('model.embed_tokens.weight', [V, h]);
    // Some tied checkpoints still store lm_head.weight; the config decides.
    const lmHead = config.tieWordEmbeddings ? embed : src.read('lm_head.weight', [V, h]);
    return { embed, layers, finalNorm: src.read('model.norm.weight', [h]), lmHead };
  } finally {
    src.close();
  }
}
