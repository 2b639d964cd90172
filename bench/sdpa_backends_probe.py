"""Which attention kernel PyTorch's SDPA runs, and how fast each backend is, at the attention
shapes of the lora-train workloads (bench/NOTES.md, session 9): flash (what llmhost calls) against
cuDNN, forward + backward, bf16, causal; then the same with a padding mask (the varlen reference's
case), where flash does not apply. Also prints the schema of aten::_cudnn_attention_forward (does
this LibTorch take cumulative sequence lengths?).

Usage: python3 bench/sdpa_backends_probe.py     (prints JSON lines)
"""
import json
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = {  # batch, heads, head dim at the workloads' 8 x 512 tokens
    "pythia-160m": (8, 12, 64),
    "pythia-1.4b": (8, 16, 128),
    "llama-2-7b": (8, 32, 128),
}


def time_backend(backend, b, h, d, t, mask=None, repeats=20):
    torch.manual_seed(0)
    q, k, v = (torch.randn(b, h, t, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
               for _ in range(3))
    dy = torch.randn(b, h, t, d, device="cuda", dtype=torch.bfloat16)

    def step():
        with sdpa_kernel([backend]):
            if mask is None:
                y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y.backward(dy)

    try:
        first = time.perf_counter()
        step()
        torch.cuda.synchronize()
        first = time.perf_counter() - first
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        torch.cuda.synchronize()
        return {"ms": 1000 * (time.perf_counter() - start) / repeats, "first_ms": 1000 * first}
    except RuntimeError as e:
        return {"error": str(e).splitlines()[0][:200]}


def main():
    print(json.dumps({"torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
                      "cudnn": torch.backends.cudnn.version(),
                      "cudnn_sdp_enabled": torch.backends.cuda.cudnn_sdp_enabled()}), flush=True)
    for name in ("_cudnn_attention_forward", "_cudnn_attention_backward",
                 "_scaled_dot_product_cudnn_attention"):
        op = getattr(torch.ops.aten, name, None)
        schemas = [str(op.default._schema)] if op is not None and hasattr(op, "default") else []
        print(json.dumps({"op": name, "schema": schemas}), flush=True)
    for shape, (b, h, d) in SHAPES.items():
        row = {"shape": shape, "t": 512}
        for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION,
                        SDPBackend.EFFICIENT_ATTENTION):
            row[backend.name.lower()] = time_backend(backend, b, h, d, 512)
        # A padded micro-batch of the varlen workload: boolean mask [b, 1, t, t], causal and padded.
        t = 480
        lengths = torch.tensor([480, 200, 150, 300, 90, 260, 180, 400], device="cuda")
        pos = torch.arange(t, device="cuda")
        keep = (pos[None, :] < lengths[:, None])[:, None, None, :] & (pos[:, None] >= pos[None, :])
        for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
            row[f"masked_{backend.name.lower()}"] = time_backend(backend, b, h, d, t, mask=keep)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
