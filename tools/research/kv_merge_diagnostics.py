#!/usr/bin/env python3
"""Why does the SemantiCache merge (GSC clusters -> mean cores + ln(size) bias) lose quality?

Self-contained PyTorch re-implementation of the "paper" method on the demo model, plus diagnostics:
  1. Jensen gap of mean-key cores vs their members, for the real future queries.
  2. RoPE mixing: per-frequency-band norm shrink of merged keys, post-RoPE vs pre-RoPE.
  3. Perplexity: full / StreamingLLM / SnapKV / paper, merge-only-in-a-subset ablations, core variants,
     and the share of the budget spent on chunks with < 1% of the window attention mass.

Run from the repository root on a GPU machine (eval-data/dev.txt must exist):
  python3 tools/research/kv_merge_diagnostics.py --out tools/research
It writes diagnostics.md (tables) and diagnostics.json (raw numbers) under --out.
"""
import argparse
import glob
import json
import math
import os
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--weights', default='packages/model-demo/weights')
ap.add_argument('--text', default='eval-data/dev.txt')
ap.add_argument('--windows', type=int, default=16)
ap.add_argument('--context', type=int, default=2048)
ap.add_argument('--target', type=int, default=256)
ap.add_argument('--ratios', default='0.75,0.5')
ap.add_argument('--out', default='tools/research')
args = ap.parse_args()

T0 = time.time()
DEV = 'cuda' if torch.cuda.is_available() else 'cpu'
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
cfg = json.load(open(os.path.join(args.weights, 'config.json')))
L, H, D = cfg['num_hidden_layers'], cfg['num_attention_heads'], cfg['head_dim']
assert cfg['num_key_value_heads'] == H
EPS = cfg['rms_norm_eps']
THETA = (cfg.get('rope_parameters') or {}).get('rope_theta', cfg.get('rope_theta', 10000.0))
SCALE = 1.0 / math.sqrt(D)
NSINK, NRECENT, MINC, MAXC = 4, 32, 4, 64
NBANDS = 8
C, TGT = args.context, args.target
NEG = float('-inf')

# ---------------------------------------------------------------- model
from safetensors.torch import load_file  # noqa: E402

sd = {}
for f in sorted(glob.glob(os.path.join(args.weights, '*.safetensors'))):
    sd.update(load_file(f))
sd = {k: v.to(DEV, torch.float32) for k, v in sd.items()}
E = sd['model.embed_tokens.weight']
LM = sd.get('lm_head.weight', E)
LAY = []
for l in range(L):
    p = f'model.layers.{l}.'
    LAY.append({n: sd[p + s] for n, s in [
        ('ln1', 'input_layernorm.weight'), ('ln2', 'post_attention_layernorm.weight'),
        ('q', 'self_attn.q_proj.weight'), ('k', 'self_attn.k_proj.weight'), ('v', 'self_attn.v_proj.weight'),
        ('o', 'self_attn.o_proj.weight'), ('g', 'mlp.gate_proj.weight'), ('u', 'mlp.up_proj.weight'),
        ('d', 'mlp.down_proj.weight')]})
NORM = sd['model.norm.weight']
INV_FREQ = 1.0 / (THETA ** (torch.arange(0, D, 2, dtype=torch.int64, device=DEV).float() / D))  # [32]


def rmsnorm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope_cs(pos):  # pos float [...] -> cos, sin [..., D]
    f = pos[..., None] * INV_FREQ
    e = torch.cat([f, f], -1)
    return e.cos(), e.sin()


def rot_half(x):
    return torch.cat([-x[..., D // 2:], x[..., :D // 2]], -1)


def rope(x, cos, sin):
    return x * cos + rot_half(x) * sin


def qkv(l, x, pos):
    W = LAY[l]
    h = rmsnorm(x, W['ln1'])
    T = x.shape[0]
    q = (h @ W['q'].T).view(T, H, D).transpose(0, 1)
    k = (h @ W['k'].T).view(T, H, D).transpose(0, 1)
    v = (h @ W['v'].T).view(T, H, D).transpose(0, 1)
    cos, sin = rope_cs(pos)
    return rope(q, cos, sin), k, rope(k, cos, sin), v


def post(l, x, o):
    W = LAY[l]
    x = x + o.transpose(0, 1).reshape(x.shape[0], H * D) @ W['o'].T
    h = rmsnorm(x, W['ln2'])
    return x + (F.silu(h @ W['g'].T) * (h @ W['u'].T)) @ W['d'].T


def logits_of(x):
    return rmsnorm(x, NORM) @ LM.T


@torch.no_grad()
def full_forward(ids):
    T = ids.shape[0]
    x = E[ids]
    pos = torch.arange(T, device=DEV).float()
    QR, KP, KR, VV = [], [], [], []
    for l in range(L):
        qr, kp, kr, v = qkv(l, x, pos)
        o = F.scaled_dot_product_attention(qr[None], kr[None], v[None], is_causal=True)[0]
        x = post(l, x, o)
        QR.append(qr); KP.append(kp); KR.append(kr); VV.append(v)
    return logits_of(x), torch.stack(QR), torch.stack(KP), torch.stack(KR), torch.stack(VV)


@torch.no_grad()
def comp_forward(ids, pos0, cache):
    """Teacher-forced forward of ids at positions pos0.. over a compressed cache (K [L,H,N,D] post-RoPE, V, bias [L,H,N])."""
    Kc, Vc, Bc = cache
    T = ids.shape[0]
    x = E[ids]
    pos = torch.arange(pos0, pos0 + T, device=DEV).float()
    causal = torch.full((T, T), NEG, device=DEV).triu(1)
    N = Kc.shape[2]
    for l in range(L):
        qr, _, kr, v = qkv(l, x, pos)
        s1 = qr @ Kc[l].transpose(1, 2) * SCALE + Bc[l][:, None, :]
        s2 = qr @ kr.transpose(1, 2) * SCALE + causal
        p = torch.cat([s1, s2], -1).softmax(-1)
        o = p[..., :N] @ Vc[l] + p[..., N:] @ v
        x = post(l, x, o)
    return logits_of(x)


# ---------------------------------------------------------------- parity
fx = json.load(open(os.path.join(args.weights, 'parity_fixture.json')))
fids = torch.tensor(fx['input_ids'], device=DEV)
flog = full_forward(fids)[0]
ref_first = torch.tensor(fx['logits_first_rows'], device=DEV)
ref_last = torch.tensor(fx['logits_last_row'], device=DEV)
parity = {
    'max_abs_first_rows': (flog[:ref_first.shape[0], :ref_first.shape[1]] - ref_first).abs().max().item(),
    'max_abs_last_row': (flog[-1] - ref_last).abs().max().item(),
    'top10_match': flog[-1].topk(10).indices.tolist() == fx['last_logits_top10'],
}
print('parity', parity, flush=True)
try:  # optional cross-check with transformers
    from transformers import AutoModelForCausalLM
    hf = AutoModelForCausalLM.from_pretrained(args.weights, torch_dtype=torch.float32).to(DEV).eval()
    with torch.no_grad():
        hl = hf(fids[None]).logits[0]
    parity['max_abs_vs_transformers'] = (hl - flog).abs().max().item()
    del hf
except Exception as e:  # noqa: BLE001
    parity['transformers_error'] = repr(e)[:200]
print('parity', parity, flush=True)

# ---------------------------------------------------------------- text
from tokenizers import Tokenizer  # noqa: E402

tok = Tokenizer.from_file(os.path.join(args.weights, 'tokenizer.json'))
assert tok.encode(fx['prompt'], add_special_tokens=False).ids == fx['input_ids'], 'tokenizer mismatch'
V = E.shape[0]
DELIM = torch.zeros(V, dtype=torch.bool)
for i in range(V):
    s = tok.decode([i], skip_special_tokens=False)
    DELIM[i] = any(c in s for c in '.!?\n')
text = open(args.text, encoding='utf-8').read()
ALL = tok.encode(text, add_special_tokens=False).ids
span = C + TGT
room = len(ALL) - span
NW = args.windows
STARTS = [round(i * room / (NW - 1)) for i in range(NW)]
print(f'dev tokens {len(ALL)}, delimiters {int(DELIM.sum())}/{V}, starts {STARTS}', flush=True)


def chunk_range(ids, a, b):
    """[a,b) -> chunks ending after delimiter runs; <MINC joins the previous (else next) if it fits MAXC; >MAXC split evenly."""
    segs, s = [], a
    for i in range(a, b):
        if DELIM[ids[i]] and (i + 1 == b or not DELIM[ids[i + 1]]):
            segs.append([s, i + 1]); s = i + 1
    if s < b:
        segs.append([s, b])
    out = []
    for sg in segs:
        if out and sg[1] - sg[0] < MINC and sg[1] - out[-1][0] <= MAXC:
            out[-1][1] = sg[1]
        else:
            out.append(sg)
    i = 0
    while i < len(out) - 1:
        if out[i][1] - out[i][0] < MINC and out[i + 1][1] - out[i][0] <= MAXC:
            out[i + 1][0] = out[i][0]; out.pop(i)
        else:
            i += 1
    res = []
    for s, e in out:
        n = e - s
        k = -(-n // MAXC)
        cuts = [s + round(j * n / k) for j in range(k + 1)]
        res += [(cuts[j], cuts[j + 1]) for j in range(k)]
    return res


# ---------------------------------------------------------------- helpers
def ssum(cid, G, x):
    """scatter-sum x [L,H,P,...] into groups cid [L,H,P] -> [L,H,G,...]."""
    out = torch.zeros(cid.shape[:2] + (G,) + x.shape[3:], dtype=x.dtype, device=DEV)
    idx = cid.view(cid.shape + (1,) * (x.dim() - 3)).expand_as(x)
    return out.scatter_add_(2, idx, x)


def ssum_last(cid, G, x):
    """x [L,H,Q,P] -> [L,H,Q,G]."""
    out = torch.zeros(x.shape[:3] + (G,), dtype=x.dtype, device=DEV)
    return out.scatter_add_(3, cid[:, :, None, :].expand_as(x), x)


def compact(cid, G):
    cnt = ssum(cid, G, torch.ones(cid.shape, device=DEV))
    ne = cnt > 0
    newid = ne.long().cumsum(-1) - 1
    return newid.gather(-1, cid), int(ne.sum(-1).max())


def group_lse(q, Kt, cid, G):
    """per query, per group: logsumexp_i q.k_i*scale over members -> [L,H,Q,G] (float64; -inf for empty)."""
    lg = (q @ Kt.transpose(-1, -2) * SCALE).double()
    m = lg.amax(-1, keepdim=True)
    s = ssum_last(cid, G, (lg - m).exp())
    return s.log() + m


def gsc(S, valid, tau):
    """Greedy seed-based clustering inside chunks. S [L,H,nC,M,M] cosine; returns label = seed slot (-1 invalid)."""
    Lx, Hx, nC, M, _ = S.shape
    thr = S >= tau[:, :, None, None, None]
    un = valid[None, None].expand(Lx, Hx, nC, M).clone()
    label = torch.full((Lx, Hx, nC, M), -1, dtype=torch.long, device=DEV)
    ar = torch.arange(M, device=DEV)
    for t in range(M):
        seed = un[..., t]
        mem = thr[..., t, :] & un & (ar > t) & seed[..., None]
        mem[..., t] = seed
        label = torch.where(mem, t, label)
        un = un & ~mem
    return label, (label == ar).sum((2, 3))


def add_protected(Kg, Vg, Bg, KR, VV, prot):
    return (torch.cat([KR[:, :, prot], Kg], 2), torch.cat([VV[:, :, prot], Vg], 2),
            torch.cat([torch.zeros(L, H, len(prot), device=DEV), Bg], 2))


def entries(cache):
    return torch.isfinite(cache[2]).float().sum(-1).mean().item()


def tokens_cache(KR, VV, prot, keep):  # keep [L,H,k] absolute positions
    idx = keep[..., None].expand(-1, -1, -1, D)
    Kg, Vg = KR.gather(2, idx), VV.gather(2, idx)
    return add_protected(Kg, Vg, torch.zeros(keep.shape, device=DEV), KR, VV, prot)


# ---------------------------------------------------------------- accumulators
RATIOS = [float(r) for r in args.ratios.split(',')]
CONFIGS = ['full', 'streaming-llm', 'snapkv', 'paper', 'paper: merge only layers 0-1', 'paper: merge only layers 2-7',
           'paper: merge only pos < C-512 (far)', 'paper: merge only pos >= C-512 (near)',
           'mass-weighted cores', 'seed key + mass-w value + ln(sum m / m_seed)', 'seed key + mean value + ln s',
           'seed only (drop members, no bias)', 'pre-RoPE mean key re-rotated at mean pos',
           'calibrated bias (window queries)', 'oracle bias (future queries)',
           'mass-weighted cores + calibrated bias (window queries)',
           'diag: all keys kept, values = core mean (paper with exact per-query mass)',
           'diag: all keys kept, values = mass-weighted core mean']
LAYER_CONFIGS = [f'paper: merge only layer {l}' for l in range(L)]
NLL = {r: {c: [] for c in CONFIGS + LAYER_CONFIGS} for r in RATIOS}
ENT = {r: {c: [] for c in CONFIGS + LAYER_CONFIGS} for r in RATIOS}
EDGES_COS = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001]
EDGES_SHR = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 1.0001]


def zacc():
    return {
        'jg_wlr': torch.zeros(L, dtype=torch.float64), 'jg_w': torch.zeros(L, dtype=torch.float64),
        'jg_core': torch.zeros(L, dtype=torch.float64), 'jg_lr_sum': torch.zeros(L, dtype=torch.float64),
        'jg_lr_n': torch.zeros(L, dtype=torch.float64), 'share': torch.zeros(L, dtype=torch.float64),
        'nq': torch.zeros(L, dtype=torch.float64),
        'bin_cos': torch.zeros(len(EDGES_COS) - 1, 4, dtype=torch.float64),
        'bin_shr': torch.zeros(len(EDGES_SHR) - 1, 4, dtype=torch.float64),
        'band_post': torch.zeros(L, NBANDS, dtype=torch.float64), 'band_pre': torch.zeros(L, NBANDS, dtype=torch.float64),
        'full_post': torch.zeros(L, dtype=torch.float64), 'full_pre': torch.zeros(L, dtype=torch.float64),
        'cos_seed_post': torch.zeros(L, dtype=torch.float64), 'cos_seed_pre': torch.zeros(L, dtype=torch.float64),
        'cos_seed_n': torch.zeros(L, dtype=torch.float64),
        'cos_mean_post': torch.zeros(L, dtype=torch.float64), 'cos_mean_pre': torch.zeros(L, dtype=torch.float64),
        'ncores2': torch.zeros(L, dtype=torch.float64), 'size2': torch.zeros(L, dtype=torch.float64),
        'tok_in2': torch.zeros(L, dtype=torch.float64), 'tau': torch.zeros(L, dtype=torch.float64),
        'nclus': torch.zeros(L, dtype=torch.float64), 'budget': 0.0, 'nchunks': 0.0,
        'low_chunks': torch.zeros(L, dtype=torch.float64), 'low_cores': torch.zeros(L, dtype=torch.float64),
        'all_cores': torch.zeros(L, dtype=torch.float64), 'low_mass': torch.zeros(L, dtype=torch.float64),
        'low_tok': torch.zeros(L, dtype=torch.float64), 'low_snap': torch.zeros(L, dtype=torch.float64),
        'heads': 0.0, 'energy': torch.zeros(L, NBANDS, dtype=torch.float64),
        'bias_seedm': [], 'mw_wlr': torch.zeros(L, dtype=torch.float64), 'mw_wabs': torch.zeros(L, dtype=torch.float64),
        'mw_core': torch.zeros(L, dtype=torch.float64),
    }


ACC = {r: zacc() for r in RATIOS}
band_pairs = torch.arange(D // 2, device=DEV).view(NBANDS, -1)  # band b = rotary pairs 4b..4b+3 (fast -> slow)
BAND_DIMS = [torch.cat([bp, bp + D // 2]) for bp in band_pairs]
band_of_dim = torch.zeros(D, dtype=torch.long, device=DEV)
for b, dims in enumerate(BAND_DIMS):
    band_of_dim[dims] = b


def band_norm(x):  # [..., D] -> [..., NBANDS]
    sq = torch.zeros(x.shape[:-1] + (NBANDS,), device=DEV, dtype=x.dtype)
    return sq.index_add_(x.dim() - 1, band_of_dim, x * x).sqrt()


consistency = None
# ---------------------------------------------------------------- main loop
for w, st in enumerate(STARTS):
    ids = torch.tensor(ALL[st:st + C + TGT], device=DEV)
    lg, QR, KP, KR, VV = full_forward(ids)
    lp = lg.float().log_softmax(-1)
    nll_full = -lp[C - 1:C + TGT - 1].gather(1, ids[C:C + TGT, None]).squeeze(1)  # [TGT]
    nll0 = nll_full[0]
    tgt_in = ids[C:C + TGT - 1]

    def score(cache):
        lo = comp_forward(tgt_in, C, cache).log_softmax(-1)
        nl = -lo.gather(1, ids[C + 1:C + TGT, None]).squeeze(1)
        return (nll0 + nl.sum()).item()

    prot = torch.cat([torch.arange(NSINK), torch.arange(C - NRECENT, C)]).to(DEV)
    cp = torch.arange(NSINK, C - NRECENT, device=DEV)  # compressible positions
    P = cp.numel()
    full_cache = (KR[:, :, :C], VV[:, :, :C], torch.zeros(L, H, C, device=DEV))
    sfull = score(full_cache)
    if consistency is None:
        consistency = abs(sfull - nll_full.sum().item())
    for r in RATIOS:
        NLL[r]['full'].append(nll_full.sum().item()); ENT[r]['full'].append(C)

    # window attention (last 32 prefill queries)
    qw = QR[:, :, C - NRECENT:C]
    lw = qw @ KR[:, :, :C].transpose(-1, -2) * SCALE
    qpos = torch.arange(C - NRECENT, C, device=DEV)
    lw = lw.masked_fill(torch.arange(C, device=DEV)[None, :] > qpos[:, None], NEG)
    mass = lw.softmax(-1).sum(2)  # [L,H,C]
    mcomp = mass[:, :, cp]  # [L,H,P]

    # future queries (full forward) for the Jensen measurement
    qf = QR[:, :, C:C + TGT]
    lf = (qf @ KR.transpose(-1, -2) * SCALE).double()
    fpos = torch.arange(C, C + TGT, device=DEV)
    lf = lf.masked_fill(torch.arange(C + TGT, device=DEV)[None, :] > fpos[:, None], NEG)
    lse_row = torch.logsumexp(lf, -1)  # [L,H,TGT]
    del lf

    # chunks (forced boundary at C-512 so the near/far ablation splits whole chunks)
    idl = ids.tolist()
    chunks = chunk_range(idl, NSINK, C - 512) + chunk_range(idl, C - 512, C - NRECENT)
    nC, M = len(chunks), MAXC
    assert sum(b - a for a, b in chunks) == C - NSINK - NRECENT and max(b - a for a, b in chunks) <= MAXC
    slot = torch.zeros(nC, M, dtype=torch.long)
    valid = torch.zeros(nC, M, dtype=torch.bool)
    for c, (a, b) in enumerate(chunks):
        slot[c, :b - a] = torch.arange(a, b); valid[c, :b - a] = True
    slot, valid = slot.to(DEV), valid.to(DEV)
    tchunk = torch.repeat_interleave(torch.arange(nC, device=DEV), valid.sum(1))  # chunk of each comp token
    Ks = KR[:, :, slot]  # [L,H,nC,M,D]
    Kn = F.normalize(Ks, dim=-1)
    S = Kn @ Kn.transpose(-1, -2)
    del Kn
    Kt, Vt, Kpt = KR[:, :, cp], VV[:, :, cp], KP[:, :, cp]  # token-level [L,H,P,D]
    posf = cp.float()[None, None].expand(L, H, P)
    ones = torch.ones(L, H, P, device=DEV)
    tokidx = torch.arange(P, device=DEV)[None, None].expand(L, H, P)

    for r in RATIOS:
        A = ACC[r]
        B = int((1 - r) * C)
        bc = B - NSINK - NRECENT
        A['budget'] = B; A['nchunks'] += nC; A['heads'] += H
        # ---- tau bisection per (layer, head)
        lo = torch.full((L, H), -1.0001, device=DEV)
        hi = torch.full((L, H), 1.0001, device=DEV)
        for _ in range(26):
            mid = (lo + hi) / 2
            _, n = gsc(S, valid, mid)
            ok = n <= bc
            lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
        label, ncl = gsc(S, valid, lo)
        A['tau'] += lo.double().sum(1).cpu(); A['nclus'] += ncl.double().sum(1).cpu()
        ar = torch.arange(M, device=DEV)
        is_seed = (label == ar)  # [L,H,nC,M]
        seedslot = (torch.arange(nC, device=DEV)[:, None] * M + label.clamp(min=0)).flatten(2)
        cid_slot = is_seed.flatten(2).long().cumsum(-1) - 1
        cid = cid_slot.gather(-1, seedslot)[:, :, valid.flatten()]  # [L,H,P] core id of each comp token
        G = int(ncl.max())

        n = ssum(cid, G, ones)
        nz = n > 0
        first = torch.full((L, H, G), P, dtype=torch.long, device=DEV).scatter_reduce_(2, cid, tokidx, 'amin', include_self=True)
        first = first.clamp(max=P - 1)

        def mean_core(wt=None, cid=cid, G=G, n=n, nz=nz):
            if wt is None:
                Kg, Vg = ssum(cid, G, Kt) / n.clamp(min=1)[..., None], ssum(cid, G, Vt) / n.clamp(min=1)[..., None]
            else:
                ws = ssum(cid, G, wt).clamp(min=1e-30)[..., None]
                Kg, Vg = ssum(cid, G, Kt * wt[..., None]) / ws, ssum(cid, G, Vt * wt[..., None]) / ws
            return Kg, Vg, torch.where(nz, n.clamp(min=1).log(), NEG)

        def run(name, Kg, Vg, Bg):
            cache = add_protected(Kg, Vg, Bg, KR[:, :, :C], VV[:, :, :C], prot)
            NLL[r][name].append(score(cache)); ENT[r][name].append(entries(cache))

        Kbar, Vbar, Bpaper = mean_core()
        run('paper', Kbar, Vbar, Bpaper)

        # ---- subset ablations: same clusters, unmerged members kept as single tokens
        def subset(name, merge_mask):
            cs = torch.where(merge_mask, cid, G + tokidx)
            cs, Gs = compact(cs, G + P)
            ns = ssum(cs, Gs, ones)
            Kg, Vg, Bg = mean_core(cid=cs, G=Gs, n=ns, nz=ns > 0)
            run(name, Kg, Vg, Bg)

        lay = torch.arange(L, device=DEV)[:, None, None].expand(L, H, P)
        pp = cp[None, None].expand(L, H, P)
        subset('paper: merge only layers 0-1', lay <= 1)
        subset('paper: merge only layers 2-7', lay >= 2)
        subset('paper: merge only pos < C-512 (far)', pp < C - 512)
        subset('paper: merge only pos >= C-512 (near)', pp >= C - 512)
        for l_ in range(L):
            subset(f'paper: merge only layer {l_}', lay == l_)

        # ---- baselines at equal entries
        snap = F.max_pool1d(mcomp.reshape(L * H, 1, P), 7, 1, 3).view(L, H, P)
        keep = snap.topk(bc, -1).indices.sort(-1).values
        cache = tokens_cache(KR[:, :, :C], VV[:, :, :C], prot, cp[keep])
        NLL[r]['snapkv'].append(score(cache)); ENT[r]['snapkv'].append(entries(cache))
        keep = cp[P - bc:][None, None].expand(L, H, bc)
        cache = tokens_cache(KR[:, :, :C], VV[:, :, :C], prot, keep)
        NLL[r]['streaming-llm'].append(score(cache)); ENT[r]['streaming-llm'].append(entries(cache))

        # ---- variants on the same clusters
        wt = mcomp + 1e-12
        Kg, Vg, _ = mean_core(wt)
        run('mass-weighted cores', Kg, Vg, Bpaper)
        fidx = first[..., None].expand(-1, -1, -1, D)
        Kseed, Vseed = Kt.gather(2, fidx), Vt.gather(2, fidx)
        mseed = wt.gather(2, first)
        bsm = (ssum(cid, G, wt) / mseed).log()
        A['bias_seedm'].append((bsm - n.clamp(min=1).log())[nz & (n >= 2)].float().cpu())
        run('seed key + mass-w value + ln(sum m / m_seed)', Kseed, Vg, torch.where(nz, bsm, NEG))
        run('seed key + mean value + ln s', Kseed, Vbar, Bpaper)
        run('seed only (drop members, no bias)', Kseed, Vseed, torch.where(nz, 0.0, NEG))
        pbar = ssum(cid, G, posf) / n.clamp(min=1)
        cos_, sin_ = rope_cs(pbar)
        Kpre_bar = ssum(cid, G, Kpt) / n.clamp(min=1)[..., None]
        run('pre-RoPE mean key re-rotated at mean pos', rope(Kpre_bar, cos_, sin_), Vbar, Bpaper)
        core_w = (qw @ Kbar.transpose(-1, -2) * SCALE).double() + Bpaper[:, :, None, :].double()
        gap_w = group_lse(qw, Kt, cid, G) - core_w  # [L,H,32,G] >= 0 (Jensen)
        gap_w = torch.where(nz[:, :, None, :], gap_w, 0.0).mean(2)
        run('calibrated bias (window queries)', Kbar, Vbar, Bpaper + gap_w.float())
        Kmw, Vmw, _ = mean_core(wt)
        core_w = (qw @ Kmw.transpose(-1, -2) * SCALE).double() + Bpaper[:, :, None, :].double()
        gap_mw = torch.where(nz[:, :, None, :], group_lse(qw, Kt, cid, G) - core_w, 0.0).mean(2)
        run('mass-weighted cores + calibrated bias (window queries)', Kmw, Vmw, Bpaper + gap_mw.float())
        cexp = cid[..., None].expand(-1, -1, -1, D)
        for name, Vc_ in [('diag: all keys kept, values = core mean (paper with exact per-query mass)', Vbar),
                          ('diag: all keys kept, values = mass-weighted core mean', Vmw)]:
            cache = add_protected(Kt, Vc_.gather(2, cexp), torch.zeros(L, H, P, device=DEV), KR[:, :, :C], VV[:, :, :C], prot)
            NLL[r][name].append(score(cache)); ENT[r][name].append(entries(cache))

        # ---- 1. Jensen gap with the real future queries
        lse_m = group_lse(qf, Kt, cid, G)  # [L,H,TGT,G]
        core_f = (qf @ Kbar.transpose(-1, -2) * SCALE).double() + Bpaper[:, :, None, :].double()
        lr = core_f - lse_m  # ln(core / members)
        pm = (lse_m - lse_row[..., None]).exp()  # members' attention probability (full cache)
        pc = (core_f - lse_row[..., None]).exp()
        sel = (nz & (n >= 2))[:, :, None, :].expand_as(lr)
        lr0 = torch.where(sel, lr, 0.0)
        pm0 = torch.where(sel, pm, 0.0)
        pc0 = torch.where(sel, pc, 0.0)
        A['jg_wlr'] += (pm0 * lr0).sum((1, 2, 3)).cpu(); A['jg_w'] += pm0.sum((1, 2, 3)).cpu()
        A['jg_core'] += pc0.sum((1, 2, 3)).cpu()
        A['jg_lr_sum'] += lr0.sum((1, 2, 3)).cpu(); A['jg_lr_n'] += sel.double().sum((1, 2, 3)).cpu()
        A['share'] += pm0.sum(3).sum((1, 2)).cpu(); A['nq'] += H * TGT
        wsum = torch.where(sel, pm, 0.0).sum(2)  # per core
        orc = (torch.where(sel, pm * (-lr), 0.0).sum(2) / wsum.clamp(min=1e-300)).float()
        run('oracle bias (future queries)', Kbar, Vbar, Bpaper + torch.where(wsum > 0, orc, 0.0))
        core_wlr = (pm0 * lr0).sum(2)
        lr_mw = (qf @ Kmw.transpose(-1, -2) * SCALE).double() + Bpaper[:, :, None, :].double() - lse_m
        lr_mw = torch.where(sel, lr_mw, 0.0)
        A['mw_wlr'] += (pm0 * lr_mw).sum((1, 2, 3)).cpu(); A['mw_wabs'] += (pm0 * lr_mw.abs()).sum((1, 2, 3)).cpu()
        A['mw_core'] += torch.where(sel, (lr_mw + lse_m - lse_row[..., None]).exp(), 0.0).sum((1, 2, 3)).cpu()
        del lr_mw
        core_pc = pc0.sum(2)
        # spread metrics per core
        sel2 = nz & (n >= 2)
        kbar_t = Kbar.gather(2, cid[..., None].expand(-1, -1, -1, D))
        cos_t = F.cosine_similarity(Kt, kbar_t, dim=-1)
        mcos = ssum(cid, G, cos_t) / n.clamp(min=1)
        mnorm = ssum(cid, G, Kt.norm(dim=-1)) / n.clamp(min=1)
        shr = 1 - Kbar.norm(dim=-1) / mnorm.clamp(min=1e-12)
        for key, metric, edges in [('bin_cos', mcos, EDGES_COS), ('bin_shr', shr, EDGES_SHR)]:
            bi = torch.bucketize(metric[sel2].clamp(0, 1), torch.tensor(edges, device=DEV), right=True) - 1
            bi = bi.clamp(0, len(edges) - 2)
            for j in range(len(edges) - 1):
                mk = bi == j
                A[key][j, 0] += mk.sum().item()
                A[key][j, 1] += core_wlr[sel2][mk].sum().item()
                A[key][j, 2] += wsum[sel2][mk].sum().item()
                A[key][j, 3] += core_pc[sel2][mk].sum().item()
        del lse_m, core_f, lr, pm, pc, sel, lr0, pm0, pc0

        # ---- 2. RoPE mixing
        nb_post = band_norm(ssum(cid, G, Kt)) / ssum(cid, G, band_norm(Kt)).clamp(min=1e-12)
        nb_pre = band_norm(ssum(cid, G, Kpt)) / ssum(cid, G, band_norm(Kpt)).clamp(min=1e-12)
        A['band_post'] += torch.where(sel2[..., None], nb_post, 0.0).sum((1, 2)).double().cpu()
        A['band_pre'] += torch.where(sel2[..., None], nb_pre, 0.0).sum((1, 2)).double().cpu()
        fpost = ssum(cid, G, Kt).norm(dim=-1) / ssum(cid, G, Kt.norm(dim=-1)).clamp(min=1e-12)
        fpre = ssum(cid, G, Kpt).norm(dim=-1) / ssum(cid, G, Kpt.norm(dim=-1)).clamp(min=1e-12)
        A['full_post'] += torch.where(sel2, fpost, 0.0).sum((1, 2)).double().cpu()
        A['full_pre'] += torch.where(sel2, fpre, 0.0).sum((1, 2)).double().cpu()
        A['ncores2'] += sel2.double().sum((1, 2)).cpu()
        A['size2'] += torch.where(sel2, n, 0.0).double().sum((1, 2)).cpu()
        A['tok_in2'] += (n >= 2).float().gather(2, cid).double().sum((1, 2)).cpu()
        A['energy'] += (band_norm(Kt) ** 2 / (Kt * Kt).sum(-1, keepdim=True)).mean(2).sum(1).double().cpu()
        nonseed = (tokidx != first.gather(2, cid)) & (n.gather(2, cid) >= 2)
        ks_post, ks_pre = Kt.gather(2, first.gather(2, cid)[..., None].expand(-1, -1, -1, D)), \
            Kpt.gather(2, first.gather(2, cid)[..., None].expand(-1, -1, -1, D))
        A['cos_seed_post'] += torch.where(nonseed, F.cosine_similarity(Kt, ks_post, dim=-1), 0.0).sum((1, 2)).double().cpu()
        A['cos_seed_pre'] += torch.where(nonseed, F.cosine_similarity(Kpt, ks_pre, dim=-1), 0.0).sum((1, 2)).double().cpu()
        A['cos_seed_n'] += nonseed.double().sum((1, 2)).cpu()
        kpbar_t = Kpre_bar.gather(2, cid[..., None].expand(-1, -1, -1, D))
        in2 = n.gather(2, cid) >= 2
        A['cos_mean_post'] += torch.where(in2, cos_t, 0.0).sum((1, 2)).double().cpu()
        A['cos_mean_pre'] += torch.where(in2, F.cosine_similarity(Kpt, kpbar_t, dim=-1), 0.0).sum((1, 2)).double().cpu()

        # ---- 3d. budget on low-mass chunks
        cmass = torch.zeros(L, H, nC, device=DEV).index_add_(2, tchunk, mcomp)
        low = cmass < 0.01 * mcomp.sum(-1, keepdim=True)  # [L,H,nC]
        ccores = is_seed.sum(-1)  # [L,H,nC]
        lowtok = low[:, :, tchunk]
        snapkeep = torch.zeros(L, H, P, dtype=torch.bool, device=DEV)
        snapkeep.scatter_(2, snap.topk(bc, -1).indices, True)
        A['low_chunks'] += low.double().sum((1, 2)).cpu()
        A['low_cores'] += (ccores * low).double().sum((1, 2)).cpu()
        A['all_cores'] += ccores.double().sum((1, 2)).cpu()
        A['low_mass'] += (torch.where(lowtok, mcomp, 0.0).sum(-1) / mcomp.sum(-1)).double().sum(1).cpu()
        A['low_tok'] += lowtok.double().mean(-1).sum(1).cpu()
        A['low_snap'] += (lowtok & snapkeep).double().sum(-1).div(bc).sum(1).cpu()
    print(f'window {w + 1}/{NW} done at {time.time() - T0:.1f}s  nC={nC}  '
          + '  '.join(f"r{r}: full {NLL[r]['full'][-1] / TGT:.3f} paper {NLL[r]['paper'][-1] / TGT:.3f} "
                      f"snap {NLL[r]['snapkv'][-1] / TGT:.3f}" for r in RATIOS), flush=True)

# ---------------------------------------------------------------- report
def table(head, rows):
    out = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join(' --- ' if i == 0 else ' ---: ' for i in range(len(head))) + '|']
    out += ['| ' + ' | '.join(str(x) for x in row) + ' |' for row in rows]
    return '\n'.join(out)


md = []
CMD = ('python3 tools/research/kv_merge_diagnostics.py --out tools/research   '
       f'# from the repo root, GPU; {NW} windows x C={C} + {TGT} target tokens of eval-data/dev.txt')
md.append(f'Reproduce every table: `{CMD}`\n')
md.append(f'Parity of the own Llama forward vs `parity_fixture.json`: {json.dumps(parity)}; '
          f'compressed-forward path with the full cache reproduces the full forward NLL to {consistency:.2e} nats (window 0 sum).\n')
md.append(f'dev.txt: {len(ALL)} tokens; window starts {STARTS}.\n')
raw = {'parity': parity, 'starts': STARTS, 'nll': NLL, 'entries': ENT}

for r in RATIOS:
    A = ACC[r]
    nh = A['heads']  # = NW*H
    md.append(f'\n## ratio {r} removed (budget {A["budget"]} entries per head incl. 36 protected)\n')
    # clustering summary
    rows = []
    for l in range(L):
        rows.append([l, f"{A['tau'][l] / nh:.3f}", f"{A['nclus'][l] / nh:.1f}", f"{A['tok_in2'][l] / nh / (C - 36):.2f}",
                     f"{A['size2'][l] / max(A['ncores2'][l], 1):.2f}"])
    md.append(f'### 0. Clustering (paper method; mean chunks per window {A["nchunks"] / NW:.1f}; compressible tokens {C - 36})\n')
    md.append(table(['layer', 'mean τ', 'clusters/head', 'share of tokens in s≥2 clusters', 'mean size of s≥2 cores'], rows))
    # 1 Jensen
    rows = []
    for l in range(L):
        wl = A['jg_wlr'][l] / A['jg_w'][l]
        ret = A['jg_core'][l] / A['jg_w'][l]
        rows.append([l, f"{A['share'][l] / A['nq'][l]:.3f}", f'{wl:+.3f}', f"{A['jg_lr_sum'][l] / A['jg_lr_n'][l]:+.3f}",
                     f'{ret:.3f}', f'{1 - ret:+.3f}', f"{A['mw_wlr'][l] / A['jg_w'][l]:+.3f}",
                     f"{A['mw_wabs'][l] / A['jg_w'][l]:.3f}", f"{A['mw_core'][l] / A['jg_w'][l]:.3f}"])
    md.append('\n### 1. Jensen gap, future queries (next 256 tokens, full-cache queries at true positions), cores with s ≥ 2\n')
    md.append('ln(core/members) = q·k̄/√d + ln s − ln Σᵢ exp(q·kᵢ/√d) (≤ 0 by Jensen). "attn share" = full-cache attention '
              'probability on members of s≥2 cores per query; "weighted" = mean weighted by that probability; '
              '"mass kept" = Σ core weight / Σ members weight (as probabilities under the full-cache normaliser).\n')
    md.append(table(['layer', 'attn share on merged members', 'weighted mean ln(core/members)', 'unweighted mean',
                     'mass kept', 'mass lost', 'mass-weighted cores: weighted ln', 'weighted |ln|', 'mass kept'], rows))
    for key, edges, label in [('bin_cos', EDGES_COS, 'mean member cosine to core key'),
                              ('bin_shr', EDGES_SHR, '1 − ‖k̄‖ / mean‖kᵢ‖')]:
        rows = []
        tot = A[key][:, 2].sum()
        for j in range(len(edges) - 1):
            c_, a_, w_, pc_ = A[key][j].tolist()
            rows.append([f'[{edges[j]:.2f}, {min(edges[j + 1], 1):.2f})', int(c_), f'{w_ / tot:.3f}',
                         f'{a_ / w_:+.3f}' if w_ > 0 else '—', f'{pc_ / w_:.3f}' if w_ > 0 else '—'])
        md.append(f'\nBy spread ({label}), all layers pooled:\n')
        md.append(table(['bin', 'cores (s≥2)', 'share of merged attention', 'weighted ln(core/members)', 'mass kept'], rows))
    # 2 RoPE
    rows = []
    band_post = A['band_post'].sum(0) / A['ncores2'].sum()
    band_pre = A['band_pre'].sum(0) / A['ncores2'].sum()
    energy = A['energy'].sum(0) / (L * nh)
    for b in range(NBANDS):
        pr = band_pairs[b].tolist()
        wl = [2 * math.pi / INV_FREQ[i].item() for i in (pr[0], pr[-1])]
        rows.append([f'{b} (pairs {pr[0]}–{pr[-1]})', f'{wl[0]:.0f}–{wl[1]:.0f}', f'{energy[b]:.3f}',
                     f'{band_post[b]:.3f}', f'{band_pre[b]:.3f}'])
    md.append('\n### 2. RoPE mixing: ‖k̄_band‖ / mean‖kᵢ_band‖ over cores with s ≥ 2 (1 = no shrink), all layers pooled\n')
    md.append(table(['band (fast → slow)', 'wavelength (tokens)', 'share of key energy', 'post-RoPE (as merged)',
                     'pre-RoPE (un-rotated to pos 0)'], rows))
    rows = []
    for l in range(L):
        k2 = max(A['ncores2'][l], 1)
        rows.append([l, f"{A['full_post'][l] / k2:.3f}", f"{A['full_pre'][l] / k2:.3f}",
                     f"{A['cos_seed_post'][l] / A['cos_seed_n'][l]:.3f}", f"{A['cos_seed_pre'][l] / A['cos_seed_n'][l]:.3f}",
                     f"{A['cos_mean_post'][l] / A['tok_in2'][l]:.3f}", f"{A['cos_mean_pre'][l] / A['tok_in2'][l]:.3f}"] +
                    [f"{A['band_post'][l, b] / k2:.2f}/{A['band_pre'][l, b] / k2:.2f}" for b in (0, 2, 4, 7)])
    md.append('\nPer layer (full 64 dims; cosines of non-seed members to the seed, and of members to their core mean; '
              'band columns post/pre):\n')
    md.append(table(['layer', '‖k̄‖/mean‖kᵢ‖ post', 'pre', 'cos(kᵢ, k_seed) post', 'pre', 'cos(kᵢ, k̄) post', 'pre',
                     'band 0', 'band 2', 'band 4', 'band 7'], rows))
    # 3 ppl
    full = torch.tensor(NLL[r]['full'], dtype=torch.float64) / TGT
    pf = math.exp(full.mean().item())
    rows = []
    for c in CONFIGS:
        x = torch.tensor(NLL[r][c], dtype=torch.float64) / TGT
        d = x - full
        p = math.exp(x.mean().item())
        rows.append([c, f'{sum(ENT[r][c]) / len(ENT[r][c]) / C:.3f}', f'{p:.3f}', f'{p - pf:+.3f}',
                     f'{d.mean().item() * 1000:+.1f} ± {d.std().item() / math.sqrt(len(d)) * 1000:.1f}',
                     f'{int((d > 0).sum())}/{len(d)}'])
    md.append(f'\n### 3a–c. Perplexity of the next {TGT} tokens, teacher-forced, {NW} windows pooled\n')
    md.append('"kept" = mean entries per layer×head / C (the subset ablations keep unmerged tokens, so they hold more). '
              'ΔNLL = per-window mean NLL difference vs full, in milli-nats/token, mean ± standard error over windows; '
              '"worse" = windows where the config is worse than full. The variants reuse the paper clusters; the oracle '
              'row sets each core bias from the future queries and is not a deployable method.\n')
    md.append(table(['config', 'kept', 'ppl', 'Δppl', 'ΔNLL (mnats/tok)', 'worse'], rows))
    rows = []
    for c in LAYER_CONFIGS:
        x = torch.tensor(NLL[r][c], dtype=torch.float64) / TGT
        d = x - full
        p = math.exp(x.mean().item())
        rows.append([c, f'{sum(ENT[r][c]) / len(ENT[r][c]) / C:.3f}', f'{p:.3f}', f'{p - pf:+.3f}',
                     f'{d.mean().item() * 1000:+.1f} ± {d.std().item() / math.sqrt(len(d)) * 1000:.1f}',
                     f'{int((d > 0).sum())}/{len(d)}'])
    md.append('\nOne layer at a time (paper clusters merged in that layer only, full cache elsewhere):\n')
    md.append(table(['config', 'kept', 'ppl', 'Δppl', 'ΔNLL (mnats/tok)', 'worse'], rows))
    bs = torch.cat(A['bias_seedm'])
    md.append(f'\n(seed-key variant: ln(Σm/m_seed) − ln s over cores with s≥2: median {bs.median():+.2f}, '
              f'p10 {bs.quantile(0.1):+.2f}, p90 {bs.quantile(0.9):+.2f}, p99 {bs.quantile(0.99):+.2f}, max {bs.max():+.2f})\n')
    # 3d
    rows = []
    for l in range(L):
        rows.append([l, f"{A['low_chunks'][l] / A['nchunks'] / H:.3f}", f"{A['low_tok'][l] / nh:.3f}",
                     f"{A['low_mass'][l] / nh:.3f}", f"{A['low_cores'][l] / A['all_cores'][l]:.3f}",
                     f"{A['low_cores'][l] / nh / A['budget']:.3f}", f"{A['low_snap'][l] / nh:.3f}"])
    md.append('\n### 3d. Budget spent on chunks with < 1% of the head\'s compressible window-attention mass\n')
    md.append(table(['layer', 'share of chunks', 'share of tokens', 'share of window mass', 'share of cores (compressible)',
                     'share of total budget', 'SnapKV: share of its kept tokens there'], rows))
    raw[f'acc_{r}'] = {k: (v.tolist() if torch.is_tensor(v) else (None if isinstance(v, list) else v)) for k, v in A.items()}

md.append(f'\nRun time: {time.time() - T0:.0f} s on {torch.cuda.get_device_name() if DEV == "cuda" else "cpu"}.\n')
os.makedirs(args.out, exist_ok=True)
open(os.path.join(args.out, 'diagnostics.md'), 'w').write('\n'.join(md))
json.dump(raw, open(os.path.join(args.out, 'diagnostics.json'), 'w'), indent=1)
print('\n'.join(md))
