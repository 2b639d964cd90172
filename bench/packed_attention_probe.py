"""Packed (variable-length) causal attention as llmhost's --packing calls it: q, k, v [T, H, D] with
cumulative sample lengths, forward + backward. Flash (what llmhost calls, at::_flash_attention_forward)
against cuDNN (aten::_cudnn_attention_forward with cum_seq_q/k), timed with CUDA events around the
kernels only (session 9's sdpa_backends_probe.py timed from the host through SDPA, leaf gradients
accumulated, which hid how far apart the kernels are). Also checks that both agree and whether
autograd records the cuDNN op.

Usage: python3 bench/packed_attention_probe.py     (prints JSON lines)
"""
import json

import torch

SHAPES = {"pythia-160m": (12, 64), "pythia-1.4b": (16, 128), "llama-2-7b": (32, 128)}
LAYOUTS = {
    "8x512": [512] * 8,  # lora-train: 8 samples of 512 in one row of 4,096
    "ragged": [480, 200, 150, 300, 90, 260, 180, 400],  # a varlen micro-batch
}


def cumulative(lengths):
    starts = [0]
    for n in lengths:
        starts.append(starts[-1] + n)
    return torch.tensor(starts, device="cuda", dtype=torch.int32)


def flash(q, k, v, cum, longest):
    return torch.ops.aten._flash_attention_forward(q, k, v, cum, cum, longest, longest, 0.0, True,
                                                   False)[0]


def cudnn(q, k, v, cum, longest):
    return torch.ops.aten._cudnn_attention_forward(q, k, v, None, cum, cum, longest, longest, True,
                                                   0.0, True, False)[0]


def timed(fn, repeats=30):
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def probe(name, op, q, k, v, dy, cum, longest):
    try:
        out = op(q, k, v, cum, longest)
        row = {"has_grad_fn": out.grad_fn is not None}
        row["fwd_ms"] = timed(lambda: op(q.detach(), k.detach(), v.detach(), cum, longest))
        if out.grad_fn is not None:
            def both():
                y = op(q, k, v, cum, longest)
                torch.autograd.grad(y, (q, k, v), dy)
            row["fwd_bwd_ms"] = timed(both)
            row["grads"] = torch.autograd.grad(op(q, k, v, cum, longest), (q, k, v), dy)
        row["out"] = out.detach()
        return row
    except Exception as e:  # noqa: BLE001 - the probe reports any failure as a row
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}


def main():
    print(json.dumps({"torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
                      "cudnn": torch.backends.cudnn.version()}), flush=True)
    for shape, (h, d) in SHAPES.items():
        for layout, lengths in LAYOUTS.items():
            torch.manual_seed(0)
            t = sum(lengths)
            q, k, v = (torch.randn(t, h, d, device="cuda", dtype=torch.bfloat16,
                                   requires_grad=True) for _ in range(3))
            dy = torch.randn(t, h, d, device="cuda", dtype=torch.bfloat16)
            cum, longest = cumulative(lengths), max(lengths)
            rows = {name: probe(name, op, q, k, v, dy, cum, longest)
                    for name, op in (("flash", flash), ("cudnn", cudnn))}
            line = {"shape": shape, "layout": layout, "tokens": t}
            if "out" in rows["flash"] and "out" in rows["cudnn"]:
                line["max_abs_out_diff"] = (rows["flash"]["out"].float() -
                                            rows["cudnn"]["out"].float()).abs().max().item()
            if "grads" in rows["flash"] and "grads" in rows["cudnn"]:
                line["max_abs_grad_diff"] = max(
                    (a.float() - b.float()).abs().max().item()
                    for a, b in zip(rows["flash"]["grads"], rows["cudnn"]["grads"]))
            for name, row in rows.items():
                line[name] = {key: value for key, value in row.items()
                              if key not in ("out", "grads")}
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
