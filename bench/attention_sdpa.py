"""torch scaled_dot_product_attention (the anchor for gdn2's attention kernels) at one causal GQA shape, bf16:
forward and forward + backward milliseconds (CUDA events, median), printed as one JSON line.

    python3 bench/attention_sdpa.py -B 2 -T 4096 -H 16 --Hkv 4 -D 128
"""
import argparse
import json

import torch
import torch.nn.functional as F


def median_ms(f, reps=20, warmup=3):
    for _ in range(warmup):
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-B", type=int, default=2)
    p.add_argument("-T", type=int, default=4096)
    p.add_argument("-H", type=int, default=16)
    p.add_argument("--Hkv", type=int, default=4)
    p.add_argument("-D", type=int, default=128)
    a = p.parse_args()
    g = torch.Generator(device="cuda").manual_seed(0)
    mk = lambda h: (torch.rand(a.B, h, a.T, a.D, device="cuda", generator=g) * 2 - 1).to(torch.bfloat16)
    q, k, v = mk(a.H).requires_grad_(), mk(a.Hkv).requires_grad_(), mk(a.Hkv).requires_grad_()
    do = mk(a.H)
    fwd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    def both():
        o = fwd()
        o.backward(do)
    with torch.no_grad():
        t_fwd = median_ms(fwd)
    t_both = median_ms(both)
    print(json.dumps({"impl": "torch.sdpa", "torch": torch.__version__, "B": a.B, "T": a.T, "Hq": a.H, "Hkv": a.Hkv,
                      "D": a.D, "fwd_ms": t_fwd, "fwd_bwd_ms": t_both}))


if __name__ == "__main__":
    main()
