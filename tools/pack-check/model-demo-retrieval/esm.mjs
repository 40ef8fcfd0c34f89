// The weights folder is in the tarball, complete (every shard the index names), without the repository-only fixture.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { requireRetrievalModelDir, retrievalModelDir } from '@semanticache/model-demo-retrieval';

assert.equal(requireRetrievalModelDir(), retrievalModelDir);
const config = JSON.parse(fs.readFileSync(path.join(retrievalModelDir, 'config.json'), 'utf8'));
const index = JSON.parse(fs.readFileSync(path.join(retrievalModelDir, 'model.safetensors.index.json'), 'utf8'));
const shards = [...new Set(Object.values(index.weight_map))];
for (const shard of shards) assert.ok(fs.statSync(path.join(retrievalModelDir, shard)).size > 1e6, shard);
assert.ok(fs.existsSync(path.join(retrievalModelDir, 'tokenizer.json')));
assert.ok(!fs.existsSync(path.join(retrievalModelDir, 'parity_fixture.json')), 'parity_fixture.json is not published');
console.log(`${config.num_hidden_layers} layers, ${shards.length} shards in ${retrievalModelDir}`);
