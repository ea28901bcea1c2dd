"""The end-to-end training anchor, measured in the same device run as gdn2's train-bench: a PyTorch LM built from
fla's GatedDeltaNet2 layer (+ SDPA gated attention every 4th layer for the hybrid) at the paper's 1.3B config,
random weights, bf16 autocast, fused AdamW; tokens/s, MFU (6N / 989 TFLOP/s) and peak memory. The model is the one
of the shared end-to-end anchor tool (its training half), unchanged. Needs PYTHONPATH at a carried copy of fla;
OUT names the result folder. Usage: python3 bench/e2e_anchor.py [train]"""
import os, sys, time, json, math
import torch, torch.nn as nn, torch.nn.functional as F
dev = 'cuda'; res = {}
MODE = sys.argv[1] if len(sys.argv) > 1 else 'all'
D, L, FF, VOCAB = 2048, 24, 5632, 32000

class SwiGLU(nn.Module):
    def __init__(s): super().__init__(); s.gu = nn.Linear(D, 2 * FF, bias=False); s.d = nn.Linear(FF, D, bias=False)
    def forward(s, x): g, u = s.gu(x).chunk(2, -1); return s.d(F.silu(g) * u)
class Attn(nn.Module):
    def __init__(s, H=16, hd=128):
        super().__init__(); s.H, s.hd = H, hd
        s.q = nn.Linear(D, 2 * H * hd, bias=False); s.kv = nn.Linear(D, 2 * 4 * hd, bias=False); s.o = nn.Linear(H * hd, D, bias=False)
    def forward(s, x):
        B, T, _ = x.shape
        q, gate = s.q(x).view(B, T, s.H, 2 * s.hd).chunk(2, -1)
        k, v = s.kv(x).view(B, T, 4, 2 * s.hd).chunk(2, -1)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, enable_gqa=True)
        return s.o((o.transpose(1, 2) * torch.sigmoid(gate)).reshape(B, T, -1))
class Block(nn.Module):
    def __init__(s, i, hybrid):
        super().__init__(); from fla.layers.gdn2 import GatedDeltaNet2
        s.n1, s.n2 = nn.RMSNorm(D), nn.RMSNorm(D)
        s.attn = hybrid and (i % 4 == 3)
        s.mix = Attn() if s.attn else GatedDeltaNet2(hidden_size=D, num_heads=16, head_dim=128, mode='chunk')
        s.mlp = SwiGLU()
    def forward(s, x):
        h = s.mix(s.n1(x)); h = h if s.attn else h[0]
        x = x + h; return x + s.mlp(s.n2(x))
class LM(nn.Module):
    def __init__(s, hybrid):
        super().__init__(); s.emb = nn.Embedding(VOCAB, D); s.blocks = nn.ModuleList([Block(i, hybrid) for i in range(L)]); s.n = nn.RMSNorm(D); s.head = nn.Linear(D, VOCAB, bias=False)
    def forward(s, ids):
        x = s.emb(ids)
        for b in s.blocks: x = b(x)
        return s.head(s.n(x))

if MODE in ('all', 'train'):
  for hybrid in (False, True):
    torch.manual_seed(0)
    m = LM(hybrid).to(dev)
    n_all = sum(p.numel() for p in m.parameters()); n_ne = n_all - 2 * VOCAB * D
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True)
    B, T = 2, 4096
    ids = torch.randint(0, VOCAB, (B, T + 1), device=dev)
    def step():
        with torch.autocast('cuda', dtype=torch.bfloat16):
            logits = m(ids[:, :-1]); loss = F.cross_entropy(logits.float().view(-1, VOCAB), ids[:, 1:].reshape(-1))
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); return loss
    for _ in range(3): step()
    torch.cuda.synchronize(); t = time.time(); n = 6
    for _ in range(n): l = step()
    torch.cuda.synchronize(); dt = (time.time() - t) / n
    tok_s = B * T / dt
    r = dict(params=n_all, nonembed=n_ne, B=B, T=T, step_s=round(dt, 4), tok_s=round(tok_s), mfu_6N=round(6 * n_all * tok_s / 989e12, 3),
             peak_GB=round(torch.cuda.max_memory_allocated() / 1e9, 1), loss=float(l))
    res['train_hybrid' if hybrid else 'train_pure'] = r; print('train', 'hybrid' if hybrid else 'pure', r, flush=True)
    del m, opt; torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()

out = os.environ.get('OUT', '.')
json.dump(res, open(os.path.join(out, 'e2e_anchor.json'), 'w'), indent=1)
print(json.dumps(res))
