import type { HeadTrace } from '@semanticache/kv-cache';
import { escapeXml } from './svg.js';

/** Entries before and after clustering for one layer, per KV head. */
export interface LayerCompression {
  layer: number;
  /** entries per head before compression */
  full: number;
  /** entries per head after compression (cores + protected tokens) */
  kept: ArrayLike<number>;
}

/** Page assignment of a protected token (sink or recent window), kept raw. */
export const PROTECTED = -1;
/** Page assignment of a token the policy removed without merging it anywhere. */
export const DROPPED = -2;

export interface InspectPage {
  title: string;
  /** free-form facts shown in the header: model, policy, threshold … */
  facts: [string, string | number][];
  /** decoded text of each token, in order */
  tokens: string[];
  /** chunk boundaries from the chunker: chunk c = [offsets[c], offsets[c+1]) */
  chunkOffsets: Uint32Array;
  /** the layer and head whose clusters are shown */
  layer: number;
  head: number;
  /** cluster of each token at (layer, head); PROTECTED (−1): kept raw; DROPPED (−2): removed, in no core */
  assignment: Int32Array;
  /** size of each cluster's core (number of tokens merged into it) */
  coreSizes: ArrayLike<number>;
  layers: LayerCompression[];
}

/**
 * One head's clusters for the page, from a compression's trace (the policy's own chunks and groups, not re-derived):
 * the entries that went into one core form a cluster, numbered in order of their first entry; protected entries get
 * PROTECTED and entries the policy removed outright DROPPED. A head the policy left as it was shows each compressible entry as its own cluster. For a first compression,
 * where entries are tokens. Returns each cluster's core size (its member count).
 */
export function clustersFromTrace(head: HeadTrace): { assignment: Int32Array; coreSizes: Float32Array } {
  const { length, sinkEnd, windowStart } = head;
  if (head.assignment && head.assignment.length !== windowStart - sinkEnd) {
    throw new RangeError(
      `the trace's assignment has ${head.assignment.length} entries, expected one per compressible entry (${windowStart - sinkEnd})`,
    );
  }
  const assignment = new Int32Array(length).fill(PROTECTED);
  const clusterOfGroup = new Map<number, number>();
  const sizes: number[] = [];
  for (let i = sinkEnd; i < windowStart; i++) {
    const group = head.assignment ? head.assignment[i - sinkEnd] : i;
    if (group < 0) {
      assignment[i] = DROPPED;
      continue;
    }
    let cluster = clusterOfGroup.get(group);
    if (cluster === undefined) {
      cluster = sizes.length;
      clusterOfGroup.set(group, cluster);
      sizes.push(0);
    }
    assignment[i] = cluster;
    sizes[cluster]++;
  }
  return { assignment, coreSizes: Float32Array.from(sizes) };
}

function checkPage(page: InspectPage): void {
  const n = page.tokens.length;
  const o = page.chunkOffsets;
  if (o.length < 1 || o[0] !== 0 || o[o.length - 1] !== n) {
    throw new RangeError(`chunkOffsets must start at 0 and end at the token count ${n}`);
  }
  for (let c = 1; c < o.length; c++) {
    if (o[c] < o[c - 1]) throw new RangeError(`chunkOffsets must be non-decreasing (at ${c})`);
  }
  if (page.assignment.length !== n) {
    throw new RangeError(`assignment has ${page.assignment.length} entries, expected one per token (${n})`);
  }
  for (let i = 0; i < n; i++) {
    const a = page.assignment[i];
    if (a < DROPPED || a >= page.coreSizes.length)
      throw new RangeError(`assignment[${i}] = ${a} is not a cluster id, PROTECTED or DROPPED`);
  }
}

const hue = (cluster: number): number => (cluster * 137.508) % 360;

/** A self-contained HTML page (inline CSS and JS, no network) showing chunks, clusters, cores and per-layer ratios. */
export function renderInspectHtml(page: InspectPage): string {
  checkPage(page);
  const n = page.tokens.length;
  const numChunks = page.chunkOffsets.length - 1;
  const numClusters = page.coreSizes.length;
  const clusterOfChunk: number[][] = Array.from({ length: numChunks }, () => []);
  const firstOfCluster = new Int32Array(numClusters).fill(-1);
  const membersOfCluster: number[][] = Array.from({ length: numClusters }, () => []);
  let protectedCount = 0;
  let droppedCount = 0;
  let chunk = 0;
  for (let i = 0; i < n; i++) {
    while (i >= page.chunkOffsets[chunk + 1]) chunk++;
    const a = page.assignment[i];
    if (a === PROTECTED) protectedCount++;
    if (a === DROPPED) droppedCount++;
    if (a < 0) continue;
    membersOfCluster[a].push(i);
    if (firstOfCluster[a] < 0) {
      firstOfCluster[a] = i;
      clusterOfChunk[chunk].push(a);
    }
  }
  const kept = numClusters + protectedCount;

  // tokens, grouped by chunk
  const text: string[] = [];
  chunk = 0;
  for (let c = 0; c < numChunks; c++) {
    text.push(`<span class="chunk c${c % 2}" data-chunk="${c}">`);
    for (let i = page.chunkOffsets[c]; i < page.chunkOffsets[c + 1]; i++) {
      const a = page.assignment[i];
      const size = a >= 0 ? page.coreSizes[a] : 1;
      const merged = a >= 0 && size > 1;
      const cls = a === PROTECTED ? 'tok prot' : a === DROPPED ? 'tok drop' : merged ? 'tok merged' : 'tok single';
      const style = merged ? ` style="--h:${hue(a).toFixed(1)}"` : '';
      const seed = a >= 0 && merged && firstOfCluster[a] === i ? ' data-seed="1"' : '';
      text.push(
        `<span class="${cls}" data-i="${i}" data-c="${c}" data-k="${a}" data-s="${size}"${seed}${style}>${escapeXml(page.tokens[i])}</span>`,
      );
    }
    text.push('</span>');
  }

  // cores per chunk: circles with area proportional to size
  const maxSize = Math.max(1, ...Array.from(page.coreSizes));
  const cores: string[] = [];
  for (let c = 0; c < numChunks; c++) {
    const ids = clusterOfChunk[c];
    if (ids.length === 0) continue;
    const dots = ids
      .map((k) => {
        const size = page.coreSizes[k];
        const d = (8 + 22 * Math.sqrt(size / maxSize)).toFixed(1);
        const members = membersOfCluster[k].map((i) => page.tokens[i]).join('·');
        const style = size > 1 ? `--h:${hue(k).toFixed(1)};` : '';
        return `<span class="core${size > 1 ? ' merged' : ''}" data-k="${k}" data-s="${size}" data-m="${escapeXml(members.slice(0, 200))}" style="${style}width:${d}px;height:${d}px"></span>`;
      })
      .join('');
    cores.push(`<div class="corerow" data-chunk="${c}"><span class="cn">${c}</span>${dots}</div>`);
  }

  // per-layer compression bars
  const layerRows = page.layers
    .map((l) => {
      const keptArr = Array.from(l.kept);
      const total = keptArr.reduce((a, b) => a + b, 0);
      const removed = l.full > 0 ? 1 - total / (l.full * keptArr.length) : 0;
      const heads = keptArr
        .map((k, h) => {
          const r = l.full > 0 ? 1 - k / l.full : 0;
          const sel = l.layer === page.layer && h === page.head ? ' sel' : '';
          return `<span class="hb${sel}" title="layer ${l.layer} head ${h}: ${k} of ${l.full} entries kept (${(100 * r).toFixed(1)}% removed)"><i style="height:${(100 * r).toFixed(1)}%"></i></span>`;
        })
        .join('');
      return `<tr${l.layer === page.layer ? ' class="sel"' : ''}><td>layer ${l.layer}</td><td class="bar"><span class="fill" style="width:${(100 * removed).toFixed(1)}%"></span><span class="lbl">${(100 * removed).toFixed(1)}% removed</span></td><td class="heads">${heads}</td></tr>`;
    })
    .join('\n');

  const facts = [
    ...page.facts,
    ['tokens', n],
    ['chunks', numChunks],
    [`clusters (layer ${page.layer}, head ${page.head})`, numClusters],
    ['of them merged (2+ tokens)', Array.from(page.coreSizes).filter((x) => x > 1).length],
    ['protected tokens', protectedCount],
    ['dropped tokens (in no core)', droppedCount],
    ['entries kept', `${kept} of ${n} (${((100 * (n - kept)) / Math.max(1, n)).toFixed(1)}% removed)`],
  ]
    .map(([k, v]) => `<div class="fact"><span>${escapeXml(String(k))}</span><b>${escapeXml(String(v))}</b></div>`)
    .join('');

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(page.title)}</title>
<style>
:root { --ink:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f7f8fa; }
* { box-sizing: border-box; }
[hidden] { display:none !important; }
body { margin:0; font:14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
header { padding:20px 28px 12px; background:#fff; border-bottom:1px solid var(--line); }
h1 { margin:0 0 10px; font-size:20px; }
h2 { font-size:15px; margin:0 0 10px; }
.facts { display:flex; flex-wrap:wrap; gap:8px 22px; }
.fact span { color:var(--muted); margin-right:6px; }
main { display:grid; grid-template-columns:minmax(0, 1fr) 360px; gap:18px; padding:18px 28px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
.controls { display:flex; gap:14px; align-items:center; flex-wrap:wrap; margin-bottom:10px; }
.controls label { cursor:pointer; }
.legend { display:flex; gap:14px; flex-wrap:wrap; font-size:12px; color:var(--muted); margin-bottom:10px; }
.legend i { display:inline-block; width:14px; height:12px; border-radius:3px; vertical-align:-2px; margin-right:4px; border:1px solid #ccd; }
#text { white-space:pre-wrap; font:13px/1.9 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; max-height:72vh; overflow:auto; padding:4px; }
.tok { border-radius:2px; cursor:default; }
.mode-clusters .tok.merged { background:hsl(var(--h) 80% 86%); box-shadow:inset 0 -2px hsl(var(--h) 60% 45%); }
.mode-clusters .tok.single { background:#fff; }
.mode-clusters .tok.prot { background:repeating-linear-gradient(45deg,#eef0f3,#eef0f3 3px,#dfe3e8 3px,#dfe3e8 6px); }
.mode-clusters .tok.drop { color:#98a2b3; text-decoration:line-through; }
.mode-clusters .tok[data-seed]::before { content:attr(data-s); font-size:9px; vertical-align:super; color:hsl(var(--h) 60% 35%); font-weight:bold; margin-right:1px; }
.mode-chunks .chunk.c0 { background:#e8f1fd; }
.mode-chunks .chunk.c1 { background:#fdf2e3; }
.mode-chunks .chunk { border-right:2px solid #98a2b3; }
.tok.hl { outline:2px solid #111; background:hsl(var(--h, 0) 90% 70%) !important; }
.cores { max-height:40vh; overflow:auto; }
.corerow { display:flex; align-items:center; flex-wrap:wrap; gap:3px; padding:3px 0; border-bottom:1px dashed var(--line); }
.cn { width:34px; color:var(--muted); font-size:11px; }
.core { display:inline-block; border-radius:50%; background:#e4e7ec; border:1px solid #c5cad3; }
.core.merged { background:hsl(var(--h) 75% 70%); border-color:hsl(var(--h) 60% 40%); }
.core.hl { outline:2px solid #111; }
table { width:100%; border-collapse:collapse; font-size:12px; }
td { padding:3px 4px; white-space:nowrap; }
tr.sel td:first-child { font-weight:bold; }
td.bar { position:relative; width:45%; }
.fill { display:block; height:16px; background:#84adea; border-radius:3px; min-width:2px; }
td.bar { background:#f1f3f6; border-radius:3px; }
.lbl { position:absolute; left:8px; top:3px; font-size:11px; }
td.heads { display:flex; gap:2px; align-items:flex-end; height:24px; }
.hb { display:inline-flex; align-items:flex-end; width:9px; height:20px; background:#eef0f3; }
.hb i { display:block; width:100%; background:#5b8bd6; }
.hb.sel { outline:2px solid #d62728; }
#tip { position:fixed; pointer-events:none; background:#1d2330; color:#fff; padding:6px 9px; border-radius:6px; font-size:12px; line-height:1.45; display:none; max-width:340px; z-index:9; white-space:pre-wrap; }
@media (max-width: 980px) { main { grid-template-columns:1fr; } }
</style>
</head>
<body>
<header><h1>${escapeXml(page.title)}</h1><div class="facts">${facts}</div></header>
<main>
<section>
<h2>Text</h2>
<div class="controls">
<label><input type="radio" name="mode" value="clusters" checked> clusters of layer ${page.layer}, head ${page.head}</label>
<label><input type="radio" name="mode" value="chunks"> chunks</label>
</div>
<div class="legend" id="legend-clusters"><span><i style="background:hsl(200 80% 86%);box-shadow:inset 0 -2px hsl(200 60% 45%)"></i>merged into a core (one colour per cluster; the number is the core's size, on its seed)</span><span><i style="background:#fff"></i>alone in its cluster</span><span><i style="background:repeating-linear-gradient(45deg,#eef0f3,#eef0f3 3px,#dfe3e8 3px,#dfe3e8 6px)"></i>protected (sink or recent window), kept raw</span><span><i style="background:#fff;border-color:#98a2b3"></i><s>dropped</s>: removed, in no core</span></div>
<div class="legend" id="legend-chunks" hidden><span><i style="background:#e8f1fd"></i><i style="background:#fdf2e3"></i>alternating chunks; a bar marks each chunk's end</span></div>
<div id="text" class="mode-clusters">${text.join('')}</div>
</section>
<div>
<section>
<h2>Compression per layer</h2>
<table>${layerRows}</table>
<p class="legend">bar: share of entries removed, all heads together; small bars: each head (red outline: the head shown)</p>
</section>
<section style="margin-top:18px">
<h2>Cores of layer ${page.layer}, head ${page.head}, by chunk</h2>
<p class="legend">one circle per core, area proportional to the tokens merged into it</p>
<div class="cores">${cores.join('\n')}</div>
</section>
</div>
</main>
<div id="tip"></div>
<script>
(function () {
  var text = document.getElementById('text');
  var tip = document.getElementById('tip');
  var lit = [];
  function clear() { lit.forEach(function (e) { e.classList.remove('hl'); }); lit = []; }
  function light(k) {
    clear();
    if (k < 0) return;
    lit = Array.prototype.slice.call(document.querySelectorAll('[data-k="' + k + '"]'));
    lit.forEach(function (e) { e.classList.add('hl'); });
  }
  function show(ev, lines) { tip.textContent = lines.join('\\n'); tip.style.display = 'block'; tip.style.left = Math.min(ev.clientX + 14, innerWidth - 350) + 'px'; tip.style.top = (ev.clientY + 16) + 'px'; }
  document.addEventListener('mouseover', function (ev) {
    var t = ev.target;
    if (t.classList && t.classList.contains('tok')) {
      var k = +t.dataset.k;
      show(ev, ['token ' + t.dataset.i + ': ' + JSON.stringify(t.textContent), 'chunk ' + t.dataset.c, k < 0 ? 'protected: kept raw' : 'cluster ' + k + ', core size ' + t.dataset.s]);
      light(k);
    } else if (t.classList && t.classList.contains('core')) {
      show(ev, ['cluster ' + t.dataset.k + ', core size ' + t.dataset.s, t.dataset.m]);
      light(+t.dataset.k);
    } else { tip.style.display = 'none'; clear(); }
  });
  document.addEventListener('mousemove', function (ev) { if (tip.style.display === 'block') { tip.style.left = Math.min(ev.clientX + 14, innerWidth - 350) + 'px'; tip.style.top = (ev.clientY + 16) + 'px'; } });
  document.querySelectorAll('input[name=mode]').forEach(function (r) {
    r.addEventListener('change', function () {
      text.className = 'mode-' + r.value;
      document.getElementById('legend-clusters').hidden = r.value !== 'clusters';
      document.getElementById('legend-chunks').hidden = r.value !== 'chunks';
    });
  });
})();
</script>
</body>
</html>
`;
}
