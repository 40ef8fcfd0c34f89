import { chunkkv } from './policies/chunkkv.js';
import { full } from './policies/full.js';
import { h2o } from './policies/h2o.js';
import { knorm } from './policies/knorm.js';
import { mergeValuesPolicy } from './policies/merge-values.js';
import type { PolicyDefinition } from './policies/policy.js';
import { semanticache } from './policies/semanticache.js';
import { snapkv } from './policies/snapkv.js';
import { streamingLlm } from './policies/streaming-llm.js';

/** Every policy `compress` knows, in the order tools list them. Adding one: its file, and a line here. */
const DEFINITIONS = [full, streamingLlm, snapkv, h2o, chunkkv, mergeValuesPolicy, semanticache, knorm] as const;

type Definition = (typeof DEFINITIONS)[number];
export type PolicyName = Definition['name'];
export const POLICIES: readonly PolicyName[] = DEFINITIONS.map((d) => d.name);

/** Options of every policy, by name. Importance tables are [layer][kvHead] Float32Arrays of each head's length. */
export type PolicyOptions = {
  [D in Definition as D['name']]: NonNullable<D['optionsType']>;
};

const BY_NAME = new Map<string, PolicyDefinition<string, object, unknown>>(
  DEFINITIONS.map((d) => [d.name, d as unknown as PolicyDefinition<string, object, unknown>]),
);

/** The definition of `name`; throws a TypeError listing the known names. */
export function policyDefinition(name: string): PolicyDefinition<string, object, unknown> {
  const definition = BY_NAME.get(name);
  if (!definition) throw new TypeError(`policy: unknown '${String(name)}'; expected one of ${POLICIES.join(', ')}`);
  return definition;
}
