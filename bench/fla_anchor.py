"""fla's GDN-2 kernels at gdn2's benchmark shapes, for bench/compare.py (run on the GPU machine, same command).

Times fla.ops.gdn2.chunk_gdn2 (forward, bf16 inputs, q/k L2-normalised in kernel) at B4xT4096, B1xT16384,
B16xT1024 and a varlen mix (H=16, K=V=128), and fused_recurrent_gdn2 decode steps at B = 1, 8, 64, 256 with an
fp32 state. Also writes a golden-format file (bf16 normalised inputs, fp32 reference from fla's naive recurrence on
the same inputs, fla's own error in its metadata) so that gdn2's error can be compared with fla's on the same inputs.
Usage: PYTHONPATH=.anchors python3 bench/fla_anchor.py OUTDIR [--quick]
(--quick: the first prefill shape only, as `gdn2 ops cuda-bench --quick`; decode at every batch.)
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
import triton

from fla.ops.gdn2 import chunk_gdn2, fused_recurrent_gdn2, naive_recurrent_gdn2
from safetensors.torch import save_file

out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
quick = "--quick" in sys.argv[2:]
dev = "cuda"
torch.manual_seed(0)
H, K, V = 16, 128, 128


def bench(fn):
    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def inputs(B, T, h=H):
    q = torch.randn(B, T, h, K, device=dev, dtype=torch.bfloat16)
    k = torch.randn(B, T, h, K, device=dev, dtype=torch.bfloat16)
    v = torch.randn(B, T, h, V, device=dev, dtype=torch.bfloat16)
    g = F.logsigmoid(torch.randn(B, T, h, K, device=dev, dtype=torch.float32)) / 16
    b = torch.rand(B, T, h, K, device=dev, dtype=torch.bfloat16)
    w = torch.rand(B, T, h, V, device=dev, dtype=torch.bfloat16)
    return q, k, v, g, b, w


rows = []
res = {"device": torch.cuda.get_device_name(0), "rows": rows}


def save():  # after every row, so a run cut short by its time limit still leaves the rows it measured
    with open(os.path.join(out_dir, "fla_anchor.json"), "w") as f:
        json.dump(res, f, indent=1)


x = torch.empty(1 << 30, device=dev, dtype=torch.uint8)
y = torch.empty_like(x)
res["copy_gbps"] = 2 * x.numel() / bench(lambda: y.copy_(x)) / 1e6
del x, y

# Accuracy on the same inputs: fla chunk (bf16) against fla's naive recurrence in fp32 on the bf16 inputs.
q, k, v, g, b, w = inputs(1, 2048, 4)
qn = F.normalize(q.float(), dim=-1).to(torch.bfloat16)
kn = F.normalize(k.float(), dim=-1).to(torch.bfloat16)
ref, _ = naive_recurrent_gdn2(qn.float(), kn.float(), v.float(), g, b.float(), w.float())
out, _ = chunk_gdn2(qn, kn, v, g, b, w, use_qk_l2norm_in_kernel=False)
fla_err = ((out.float() - ref).norm() / ref.norm()).item()
res["fla_chunk_rel_err_vs_fp32_naive"] = fla_err
save_file({"gate.q": qn.cpu(), "gate.k": kn.cpu(), "gate.v": v.cpu(), "gate.g": g.cpu(), "gate.b": b.cpu(),
           "gate.w": w.cpu(), "gate.o": ref.float().cpu()},
          os.path.join(out_dir, "fla_gate.safetensors"),
          metadata={"format": "gdn2-golden-ops-v1", "fla_rel_err": repr(fla_err),
                    "source": "fla naive_recurrent_gdn2 in fp32 on bf16 inputs"})
print("fla chunk_gdn2 relative RMS error vs fp32 naive on the gate inputs:", fla_err, flush=True)

shapes = [("B4xT4096", 4, 4096, None), ("B1xT16384", 1, 16384, None), ("B16xT1024", 16, 1024, None),
          ("varlen8x16384", 1, 16384, [5120, 3072, 2048, 2048, 1536, 1024, 1000, 536])]
if quick:
    shapes = shapes[:1]
for name, B, T, seqlens in shapes:
    q, k, v, g, b, w = inputs(B, T)
    cu = None
    if seqlens:
        cu = torch.tensor([0] + list(torch.tensor(seqlens).cumsum(0)), device=dev, dtype=torch.int32)
    with torch.no_grad():
        fn = lambda: chunk_gdn2(q, k, v, g, b, w, use_qk_l2norm_in_kernel=True, cu_seqlens=cu)[0]
        fn()
        ms = bench(fn)
    rows.append({"suite": "ops.chunk_fwd", "impl": "fla.chunk_gdn2", "case": name, "ms": ms})
    print(rows[-1], flush=True)
    save()
    del q, k, v, g, b, w
    torch.cuda.empty_cache()

# Forward + backward (training) at the first three shapes, and the peak memory it adds over its inputs.
for name, B, T, _ in shapes[:3]:
    q, k, v, g, b, w = [t.requires_grad_() for t in inputs(B, T)]
    do = torch.randn_like(v)

    def fwd_bwd():
        o = chunk_gdn2(q, k, v, g, b, w, use_qk_l2norm_in_kernel=True)[0]
        o.backward(do)

    fwd_bwd()
    ms = triton.testing.do_bench(fwd_bwd, warmup=10, rep=100, grad_to_none=[q, k, v, g, b, w], return_mode="median")
    torch.cuda.synchronize()
    for t in (q, k, v, g, b, w):
        t.grad = None
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fwd_bwd()
    torch.cuda.synchronize()
    peak_mb = (torch.cuda.max_memory_allocated() - base) / 1e6
    rows.append({"suite": "ops.chunk_fwd_bwd", "impl": "fla.chunk_gdn2", "case": name, "ms": ms, "peak_extra_mb": peak_mb})
    print(rows[-1], flush=True)
    save()
    del q, k, v, g, b, w, do
    torch.cuda.empty_cache()

for B in [1, 8, 64, 256]:
    q, k, v, g, b, w = inputs(B, 1)
    qn, kn = F.normalize(q.float(), dim=-1).to(q.dtype), F.normalize(k.float(), dim=-1).to(k.dtype)
    s0 = torch.randn(B, H, K, V, device=dev, dtype=torch.float32)
    with torch.no_grad():
        ms = bench(lambda: fused_recurrent_gdn2(qn, kn, v, g, b, w, initial_state=s0, output_final_state=True))
    rows.append({"suite": "ops.decode", "impl": "fla.fused_recurrent_gdn2", "case": f"B{B}", "state_dtype": "fp32",
                 "ms": ms, "us": ms * 1e3})
    print(rows[-1], flush=True)
    save()

save()
