import { POLICIES, type PolicyName, SEMANTICACHE_PRESETS } from '@semanticache/kv-cache';
import type { PolicyKnobs } from './engine.js';
import { SettingsError } from './errors.js';

/** The preset a plain `semanticache` runs with. */
export const DEFAULT_PRESET = 'default';

/** A policy as named in a grid: `snapkv`, `semanticache`, or `semanticache:PRESET`. */
export interface PolicySpec {
  policy: PolicyName;
  /** semanticache only; absent for the default preset */
  preset?: string;
}

/** Every name a grid's policies accept: the plain policies, then `semanticache:PRESET` for each preset. */
export function policySpecNames(): string[] {
  return [...POLICIES, ...SEMANTICACHE_PRESETS.map((p) => `semanticache:${p}`)];
}

/**
 * Parses `NAME` or `semanticache:PRESET`. `semanticache:default` is plain `semanticache` (the same compression), so
 * both name one config.
 */
export function parsePolicySpec(raw: string, label: string): PolicySpec {
  const colon = raw.indexOf(':');
  const name = colon < 0 ? raw : raw.slice(0, colon);
  if (!(POLICIES as readonly string[]).includes(name)) {
    throw new SettingsError(
      `${label}: unknown value '${raw}' (expected one of ${POLICIES.join(', ')}, or semanticache:PRESET)`,
    );
  }
  const policy = name as PolicyName;
  if (colon < 0) return { policy };
  const preset = raw.slice(colon + 1);
  if (policy !== 'semanticache') throw new SettingsError(`${label}: only semanticache takes a preset, got '${raw}'`);
  return { policy, ...presetField(preset, label) };
}

/** `{ preset }` for a named preset, `{}` for the default one; a usage error for an unknown name. */
export function presetField(preset: string, label: string): { preset?: string } {
  if (!(SEMANTICACHE_PRESETS as readonly string[]).includes(preset)) {
    throw new SettingsError(
      `${label}: unknown semanticache preset '${preset}' (expected one of ${SEMANTICACHE_PRESETS.join(', ')})`,
    );
  }
  return preset === DEFAULT_PRESET ? {} : { preset };
}

/** The spec's name as written in a grid and in labels: `semanticache:paper`, `snapkv`. */
export function specName(spec: PolicySpec): string {
  return spec.preset === undefined ? spec.policy : `${spec.policy}:${spec.preset}`;
}

/** The knobs a spec passes to the session (the preset, if any). */
export function specKnobs(spec: PolicySpec): PolicyKnobs {
  return spec.preset === undefined ? {} : { preset: spec.preset };
}
