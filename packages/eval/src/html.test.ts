import { gscCluster } from '@semanticache/gsc-cluster';
import { describe, expect, it } from 'vitest';
import { clustersFromTrace, DROPPED, type InspectPage, PROTECTED, renderInspectHtml } from './html.js';

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
// two sinks and a window of four: the compressible entries are 2..35
const sinkEnd = 2;
const windowStart = 36;
const mask = new Uint8Array(40).fill(1, 0, sinkEnd).fill(1, windowStart);

/** GSC on the synthetic keys, read back the way inspect reads a compression's trace. */
function clustersAt(options: { threshold?: number; targetClusters?: number }) {
  const span = Uint32Array.from(offsets, (o) => Math.min(Math.max(o, sinkEnd), windowStart) - sinkEnd);
  const gsc = gscCluster(keys.subarray(sinkEnd * d, windowStart * d), windowStart - sinkEnd, d, span, options);
  const trace = { length: 40, sinkEnd, windowStart, chunks: span, assignment: gsc.assignment };
  return { ...clustersFromTrace(trace), kept: gsc.numClusters + sinkEnd + (40 - windowStart) };
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

  it('shows every compressible token of a head left as it was as its own cluster', () => {
    const alone = clustersFromTrace({ length: 6, sinkEnd: 1, windowStart: 4 });
    expect(Array.from(alone.assignment)).toEqual([-1, 0, 1, 2, -1, -1]);
    expect(Array.from(alone.coreSizes)).toEqual([1, 1, 1]);
  });

  it('marks entries the policy removed outright as dropped, and counts them on the page', () => {
    const head = { length: 6, sinkEnd: 1, windowStart: 5, assignment: Int32Array.from([3, -1, 3, -1]) };
    const { assignment, coreSizes } = clustersFromTrace(head);
    expect(Array.from(assignment)).toEqual([PROTECTED, 0, DROPPED, 0, DROPPED, PROTECTED]);
    expect(Array.from(coreSizes)).toEqual([2]);
    const html = renderInspectHtml({
      title: 't',
      facts: [],
      tokens: ['a', 'b', 'c', 'd', 'e', 'f'],
      chunkOffsets: Uint32Array.from([0, 6]),
      layer: 0,
      head: 0,
      assignment,
      coreSizes,
      layers: [],
    });
    expect(html).toContain('<span>dropped tokens (in no core)</span><b>2</b>');
    expect(html).toContain('<span>entries kept</span><b>3 of 6 (50.0% removed)</b>');
    expect(html.match(/class="tok drop"/g)).toHaveLength(2);
  });

  it('reports length mismatches as RangeErrors', () => {
    const head = { length: 4, sinkEnd: 1, windowStart: 3 };
    expect(() => clustersFromTrace({ ...head, assignment: new Int32Array(3) })).toThrow(/one per compressible entry/);
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
