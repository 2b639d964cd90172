#!/usr/bin/env python3
"""Writes the bad-input corpus the SDK tests feed to the safetensors reader, the checkpoint opener
and the config parser. Every file is small and broken in exactly one way. Run from anywhere:
`python3 tests/data/bad/make_bad_files.py` (standard library only); commit the output."""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def path(*parts):
    full = os.path.join(HERE, *parts)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full


def raw(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


def safetensors_bytes(header, data, declared_length=None):
    """header: dict or str or bytes, laid out like the reference writer (space-padded to 8)."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8")
    header += b" " * ((8 - len(header) % 8) % 8)
    length = len(header) if declared_length is None else declared_length
    return struct.pack("<Q", length) + header + data


def st(name, header, data=b"", declared_length=None):
    raw(os.path.join("safetensors", name), safetensors_bytes(header, data, declared_length))


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def main():
    for sub in ("safetensors", "checkpoints", "configs", "tokenizers", "datasets"):
        shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)

    zeros16 = bytes(16)
    # --- safetensors files -------------------------------------------------------------------
    raw("safetensors/empty.safetensors", b"")
    raw("safetensors/too-short.safetensors", b"\x10\x00\x00")
    st("header-length-absurd.safetensors", {"a": tensor("F32", [4], 0, 16)}, zeros16,
       declared_length=2**60)
    st("header-past-eof.safetensors", {"a": tensor("F32", [4], 0, 16)}, zeros16,
       declared_length=4096)
    st("offsets-past-end.safetensors",
       {"gpt_neox.embed_in.weight": tensor("F32", [4], 0, 999999)}, zeros16)
    good = safetensors_bytes({"w": tensor("F32", [8, 8], 0, 256)}, bytes(256))
    raw("safetensors/truncated-data.safetensors", good[: len(good) - 100])
    st("shape-mismatch.safetensors", {"w": tensor("F32", [2, 3], 0, 16)}, zeros16)
    st("shape-overflow.safetensors", {"w": tensor("F32", [2**40, 2**40, 2**40], 0, 16)}, zeros16)
    st("begin-after-end.safetensors", {"w": tensor("U8", [0], 8, 4)}, zeros16)
    st("overlap.safetensors", {"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [2], 4, 12)},
       zeros16)
    st("unknown-dtype.safetensors", {"w": tensor("Q4_K", [4], 0, 16)}, zeros16)
    st("negative-shape.safetensors", {"w": tensor("F32", [-1, 4], 0, 16)}, zeros16)
    st("fractional-shape.safetensors", {"w": tensor("F32", [4.0], 0, 16)}, zeros16)
    st("missing-offsets.safetensors", {"w": {"dtype": "F32", "shape": [4]}}, zeros16)
    st("invalid-utf8.safetensors",
       b'{"w\xff\xfe":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', zeros16)
    st("invalid-json.safetensors", '{"w":{"dtype":"F32","shape":[4],', zeros16)
    st("header-not-object.safetensors", "[1,2,3]", zeros16)
    st("tensor-not-object.safetensors", {"w": [0, 16]}, zeros16)
    st("metadata-not-strings.safetensors",
       {"__metadata__": {"format": 1}, "w": tensor("F32", [4], 0, 16)}, zeros16)

    # --- checkpoint directories --------------------------------------------------------------
    # A pickle is never opened: the content only has to exist.
    raw("checkpoints/pickle-only/pytorch_model.bin", b"not a pickle, never read\n")
    raw("checkpoints/empty-dir/.keep", b"")
    shard = safetensors_bytes({"a": tensor("F32", [4], 0, 16)}, zeros16)
    raw("checkpoints/index-escapes-dir/model-00001-of-00001.safetensors", shard)
    raw("checkpoints/index-escapes-dir/model.safetensors.index.json",
        json.dumps({"metadata": {}, "weight_map": {"a": "../model-00001-of-00001.safetensors"}},
                   indent=2).encode())
    raw("checkpoints/index-missing-shard/model-00001-of-00002.safetensors", shard)
    raw("checkpoints/index-missing-shard/model.safetensors.index.json",
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                   "b": "model-00002-of-00002.safetensors"}}, indent=2).encode())
    raw("checkpoints/index-missing-tensor/model-00001-of-00001.safetensors", shard)
    raw("checkpoints/index-missing-tensor/model.safetensors.index.json",
        json.dumps({"weight_map": {"a": "model-00001-of-00001.safetensors",
                                   "lm_head.weight": "model-00001-of-00001.safetensors"}},
                   indent=2).encode())
    raw("checkpoints/index-no-weight-map/model.safetensors.index.json", b'{"metadata": {}}\n')

    # --- config.json variants (each a valid tiny-llama config with one thing wrong) ------------
    base = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 1024,
        "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0, "max_position_embeddings": 128,
    }

    def config(name, **changes):
        body = dict(base)
        for key, value in changes.items():
            if value is Ellipsis:
                body.pop(key, None)
            else:
                body[key] = value
        raw(os.path.join("configs", name), json.dumps(body, indent=2).encode())

    config("rope-scaling-linear.json", rope_scaling={"type": "linear", "factor": 2.0})
    config("rope-parameters-yarn.json", rope_theta=Ellipsis,
           rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0})
    config("heads-do-not-divide-hidden.json", num_attention_heads=5, num_key_value_heads=5)
    config("kv-heads-do-not-divide-heads.json", num_key_value_heads=3)
    config("vocab-absurd.json", vocab_size=2**40)
    config("layers-absurd.json", num_hidden_layers=100000)
    config("hidden-negative.json", hidden_size=-64)
    config("hidden-missing.json", hidden_size=Ellipsis)
    config("hidden-string.json", hidden_size="64")
    config("rotary-pct-zero.json", model_type="gpt_neox", rotary_pct=0.0)
    raw("configs/truncated.json", json.dumps(base, indent=2).encode()[:120])
    # A number beyond double range (found by fuzz_model_config): the JSON parser's out_of_range.
    raw("configs/number-overflow.json", json.dumps(base, indent=2).replace(
        '"rms_norm_eps": 1e-05', '"rms_norm_eps": 1e605').encode())

    # --- tokenizer.json variants (a minimal byte-level BPE file with one thing wrong) ----------
    def tokenizer(name, model_changes=None, **changes):
        model = {"type": "BPE", "dropout": None, "unk_token": None, "fuse_unk": False,
                 "byte_fallback": False, "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
        model.update(model_changes or {})
        body = {"version": "1.0", "added_tokens": [], "normalizer": None,
                "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                                  "trim_offsets": True, "use_regex": True},
                "post_processor": None, "decoder": {"type": "ByteLevel"}, "model": model}
        for key, value in changes.items():
            body[key] = value
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        raw(os.path.join("tokenizers", name), data)

    raw("tokenizers/empty.json", b"")
    raw("tokenizers/not-object.json", b"[1, 2, 3]\n")
    raw("tokenizers/truncated.json", b'{"version": "1.0", "model": {"type": "BPE", "vocab": {"a"')
    raw("tokenizers/number-overflow.json",
        b'{"version": "1.0", "model": {"type": "BPE", "dropout": 1e999, "vocab": {}, "merges": []}}')
    raw("tokenizers/invalid-utf8.json",
        b'{"model": {"type": "BPE", "vocab": {"\xff\xfe": 0}, "merges": []}}')
    tokenizer("model-wordpiece.json", {"type": "WordPiece"})
    tokenizer("vocab-id-absurd.json", {"vocab": {"a": 2**40}})
    tokenizer("vocab-id-negative.json", {"vocab": {"a": -1}})
    tokenizer("vocab-not-object.json", {"vocab": ["a", "b"]})
    tokenizer("merges-not-array.json", {"merges": "a b"})
    tokenizer("merge-without-space.json", {"merges": ["ab"]})
    tokenizer("merge-of-unknown-tokens.json", {"merges": ["x y"]})
    tokenizer("added-token-without-id.json", added_tokens=[{"content": "<|endoftext|>"}])
    tokenizer("added-token-id-absurd.json",
              added_tokens=[{"id": 2**62, "content": "<|endoftext|>", "special": True}])
    tokenizer("pre-tokenizer-unsupported.json", pre_tokenizer={"type": "Whitespace"})

    # --- dataset files (Dolly JSONL, Alpaca JSON), each with one bad record -------------------
    good_dolly = {"instruction": "Say hi.", "context": "", "response": "Hi.", "category": "open_qa"}
    dolly_line = json.dumps(good_dolly).encode() + b"\n"
    raw("datasets/dolly-empty.jsonl", b"")
    raw("datasets/dolly-not-json.jsonl", dolly_line + b"{instruction: Say hi}\n")
    raw("datasets/dolly-not-object.jsonl", dolly_line + b'["Say hi.", "", "Hi."]\n')
    raw("datasets/dolly-missing-response.jsonl",
        dolly_line + json.dumps({"instruction": "x", "context": ""}).encode() + b"\n")
    raw("datasets/dolly-response-not-string.jsonl",
        dolly_line + json.dumps(dict(good_dolly, response=42)).encode() + b"\n")
    raw("datasets/dolly-invalid-utf8.jsonl",
        dolly_line + b'{"instruction": "\xff\xfe", "context": "", "response": "x"}\n')
    raw("datasets/dolly-truncated.jsonl", dolly_line + dolly_line[:30])
    good_alpaca = {"instruction": "Say hi.", "input": "", "output": "Hi."}
    raw("datasets/alpaca-empty.json", b"")
    raw("datasets/alpaca-empty-array.json", b"[]\n")
    raw("datasets/alpaca-not-array.json", json.dumps(good_alpaca).encode())
    raw("datasets/alpaca-truncated.json", json.dumps([good_alpaca] * 3).encode()[:100])
    raw("datasets/alpaca-missing-output.json",
        json.dumps([good_alpaca, {"instruction": "x", "input": ""}]).encode())
    raw("datasets/alpaca-input-not-string.json",
        json.dumps([good_alpaca, dict(good_alpaca, input=["a"])]).encode())
    raw("datasets/alpaca-invalid-utf8.json",
        b'[{"instruction": "\xc3\x28", "input": "", "output": "x"}]')
    raw("datasets/alpaca-nesting-bomb.json", b"[" * 100000)


if __name__ == "__main__":
    main()
