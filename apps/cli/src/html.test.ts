import { gscCluster } from '@semanticache/gsc-cluster';
import { describe, expect, it } from 'vitest';
import { clustersFromRemap, protectedMask } from './commands/inspect';
import { type InspectPage, renderInspectHtml } from './html';

/** Keys where the tokens of each group point the same way (plus a little noise) and groups are orthogonal. */
function syntheticKeys(groups: number[], d: number): Float32Array {
  const keys = new Float32Array(groups.length * d);
  let seed = 1;
  const noise = () => {
    seed = (seed * 16807) % 2147483647;
    return (seed / 2147483647 - 0.5) * 0.02;
  };
  groups.forEach((g, i) => {
    for (let j = 0; j < d; j++) keys[i * d + j] = (j === g % d ? 1 : 0) + noise();
  });
  return keys;
}

const d = 8;
// three chunks; inside each, tokens alternate between a few directions
const offsets = Uint32Array.from([0, 10, 25, 40]);
const groups = Array.from({ length: 40 }, (_, i) => (i < 10 ? i % 2 : i < 25 ? 2 + (i % 3) : 5 + (i % 2)));
const keys = syntheticKeys(groups, d);
const mask = protectedMask(40, 2, 4);

/** GSC on the synthetic keys, read back the way inspect reads a compression: cluster id = the entry a token went to. */
function clustersAt(options: { threshold?: number; targetClusters?: number }) {
  const gsc = gscCluster(keys, 40, d, offsets, { ...options, protectedMask: mask });
  return { ...clustersFromRemap(gsc.assignment, mask), kept: gsc.numClusters };
}

describe('clusters of synthetic keys', () => {
  const result = clustersAt({ threshold: 0.95 });

  it('groups same-direction tokens of a chunk into one core and keeps protected tokens raw', () => {
    for (let i = 0; i < 40; i++) {
      if (mask[i]) {
        expect(result.assignment[i]).toBe(-1);
        continue;
      }
      for (let j = 0; j < 40; j++) {
        if (mask[j] || j === i) continue;
        const sameChunk = i < 10 === j < 10 && i < 25 === j < 25;
        const same = sameChunk && groups[i] === groups[j];
        expect(result.assignment[i] === result.assignment[j]).toBe(same);
      }
    }
    const sizes = Array.from(result.coreSizes) as number[];
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(40 - 6);
    // kept = one entry per core plus every protected token
    expect(result.kept).toBe(sizes.length + 6);
    expect(sizes.length).toBe(2 + 3 + 2);
  });

  it('reports evicted tokens and length mismatches as RangeErrors', () => {
    expect(() => clustersFromRemap(Int32Array.from([0, -1]), new Uint8Array(2))).toThrow(/evicted/);
    expect(() => clustersFromRemap(new Int32Array(3), new Uint8Array(2))).toThrow(/one per token/);
  });
});

describe('renderInspectHtml', () => {
  const { assignment, coreSizes } = clustersAt({ threshold: 0.95 });
  const tokens = Array.from({ length: 40 }, (_, i) => (i === 12 ? ' <b>&amp' : ` w${i}`));
  const page: InspectPage = {
    title: 'Test page',
    facts: [['model', 'synthetic']],
    tokens,
    chunkOffsets: offsets,
    layer: 1,
    head: 0,
    assignment,
    coreSizes,
    layers: [
      { layer: 0, full: 40, kept: [30, 20] },
      { layer: 1, full: 40, kept: [13, 25] },
    ],
  };
  const html = renderInspectHtml(page);

  it('has one element per token, in order, grouped into the chunks', () => {
    const toks = [
      ...html.matchAll(/<span class="tok[^"]*" data-i="(\d+)" data-c="(\d+)" data-k="(-?\d+)" data-s="(\d+)"/g),
    ];
    expect(toks.map((m) => Number(m[1]))).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(html.match(/<span class="chunk /g)).toHaveLength(3);
    expect(toks.map((m) => Number(m[2]))).toEqual(groups.map((_, i) => (i < 10 ? 0 : i < 25 ? 1 : 2)));
    expect(toks.map((m) => Number(m[3]))).toEqual(Array.from(assignment));
    expect(html.match(/class="tok prot"/g)).toHaveLength(6);
  });

  it('draws one core per cluster, the per-layer bars, a legend and tooltips, with nothing fetched', () => {
    expect(html.match(/<span class="core/g)).toHaveLength(coreSizes.length);
    expect(html.match(/<tr/g)).toHaveLength(2);
    expect(html).toContain('<tr class="sel"><td>layer 1</td>');
    expect(html).toContain('class="legend"');
    expect(html).toContain('id="tip"');
    expect(html).not.toMatch(/\s(src|href)=/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('escapes token text', () => {
    expect(html).toContain('&lt;b&gt;&amp;amp');
    expect(html).not.toContain(' <b>&amp<');
  });

  it('rejects inconsistent input with a RangeError', () => {
    expect(() => renderInspectHtml({ ...page, chunkOffsets: Uint32Array.from([0, 10, 39]) })).toThrow(
      /end at the token count/,
    );
    expect(() => renderInspectHtml({ ...page, assignment: new Int32Array(39) })).toThrow(/one per token/);
    const bad = Int32Array.from(assignment);
    bad[5] = 999;
    expect(() => renderInspectHtml({ ...page, assignment: bad })).toThrow(/not a cluster id/);
  });
});
