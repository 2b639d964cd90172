#!/usr/bin/env python3
"""Reference fixtures for issue 15, made with Hugging Face transformers / tokenizers / PEFT.

Usage (from the repository root, on a machine with transformers 5.x, tokenizers, sentencepiece,
protobuf, peft, torch):

    CUDA_VISIBLE_DEVICES= python3 tests/data/make_goldens_issue15.py OUT_DIR

Writes into OUT_DIR (copy its contents into tests/data/):
  tiny-llama-tokjson/             tiny-llama's tokenizer.model as a Llama-2-style tokenizer.json
                                  (LlamaConverter legacy layout: Prepend/Replace normalizer)
  tiny-llama-tokjson-metaspace/   the same vocabulary, newer layout (Metaspace pre-tokenizer)
  tiny-llama-tokjson-transformers/ what transformers itself writes from tokenizer.model (if it can)
  tiny-llama3/                    random tiny Llama 3 (llama3 rope scaling, byte-level BPE
                                  tokenizer.json only, several EOS ids)
  tiny-qwen2/                     random tiny Qwen2 (q/k/v biases, tied embeddings)
  golden/tiny-llama-tokjson.json  ids/decodes of the hard strings for each tokenizer.json above,
                                  next to sentencepiece's own ids
  golden/tiny-llama3.json, golden/tiny-llama3-logits.safetensors
  golden/tiny-qwen2.json, golden/tiny-qwen2-logits.safetensors, golden/tiny-qwen2-lora-adapter/

Everything is seeded, float32 on the CPU. Any failure raises; a summary is printed at the end.
"""

import json
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import torch  # noqa: E402
import transformers  # noqa: E402
import tokenizers  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from tokenizers.models import BPE  # noqa: E402
from safetensors.torch import save_file, load_file  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY_LLAMA = REPO / "tests" / "data" / "tiny-llama"
TOKENIZER_GOLDENS = REPO / "tests" / "data" / "golden" / "tokenizers.json"

# Llama 3's and Qwen2's pre-tokenizer split patterns, as their published tokenizer.json files hold them.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Extra strings that exercise the byte-level split patterns (contractions, digit groups, added tokens).
EXTRA_BYTE_LEVEL_STRINGS = [
    "don't I'M we'LL they've",
    "1234567 89 0.5",
    "   multiple   spaces\n\n  indented\t\tline",
    "<|eot_id|> after a special token <|endoftext|>",
    "Ünïcödé 東京 🚀 ümlaut",
]

CORPUS_LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "The capital of France is Paris. The capital of Japan is Tokyo.",
    "What is 123 plus 456? The answer is 579.",
    "Tell me an interesting fun fact about earth: it is the third planet from the sun.",
    "Hello world! Hello there, how are you doing today?",
    "### Instruction:\nWrite a short poem.\n\n### Response:\nRoses are red, violets are blue.",
    "numbers 3.14159 and 1,000,000 and 2026-11-24 and 42",
    "  leading spaces and trailing  ",
    "line1\nline2\r\nline3\n\n\n",
    "I'm sure you'll agree they've done what we'd hoped; it's fine, isn't it?",
    "Ünïcödé: naïve café, Straße, 東京, Καλημέρα 🚀🔥\ttab",
    "def main():\n    print('hello')\n    return 0\n",
    "Large language models predict the next token given the previous tokens.",
    "A tokenizer splits text into pieces; a model maps pieces to probabilities.",
]

SUMMARY = []


def note(line):
    SUMMARY.append(line)
    print(line, flush=True)


def check(condition, message):
    if not condition:
        raise RuntimeError("CHECK FAILED: " + message)


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def hard_strings():
    data = json.loads(TOKENIZER_GOLDENS.read_text(encoding="utf-8"))
    strings = [case["text"] for case in data["spm_tiny_llama"]]
    check(len(strings) >= 10, "tokenizers.json holds the hard strings")
    return strings, data["spm_tiny_llama"]


def encode_cases(tok, strings):
    """ids without and with the post-processor's special tokens, the tokens and the decode."""
    cases = []
    for text in strings:
        plain = tok.encode(text, add_special_tokens=False)
        with_special = tok.encode(text, add_special_tokens=True)
        cases.append(
            {
                "text": text,
                "ids": plain.ids,
                "tokens": plain.tokens,
                "ids_with_special": with_special.ids,
                "decoded": tok.decode(plain.ids, skip_special_tokens=False),
            }
        )
    return cases


# ---------------------------------------------------------------------------------------------
# 1. tiny-llama's sentencepiece model as tokenizer.json
# ---------------------------------------------------------------------------------------------


def load_sp_proto(path):
    try:
        from sentencepiece import sentencepiece_model_pb2 as pb2
    except ImportError:
        from transformers.utils import sentencepiece_model_pb2_new as pb2
    proto = pb2.ModelProto()
    proto.ParseFromString(Path(path).read_bytes())
    return proto


def llama_converter_vocab_and_merges(proto):
    """The vocabulary and merges transformers' LlamaConverter derives from a sentencepiece BPE model:
    <unk>, <s>, </s> then the pieces; a merge for every split of a piece into two pieces, ordered by
    the merged piece's score (highest first), ties by the parts' ids."""
    check(proto.trainer_spec.model_type == 2, "tiny-llama's tokenizer.model is a BPE model")
    vocab_scores = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0)]
    vocab_scores += [(p.piece, p.score) for p in proto.pieces[3:]]
    vocab = {piece: i for i, (piece, _) in enumerate(vocab_scores)}
    merges = []
    for piece, score in vocab_scores:
        local = []
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    return vocab, [(m[0], m[1]) for m in merges]


def llama_sentencepiece_style_tokenizer(proto, layout):
    vocab, merges = llama_converter_vocab_and_merges(proto)
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True, dropout=None))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    if layout == "legacy":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    elif layout == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    else:
        raise ValueError(layout)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(content=" ", left=1, right=0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", vocab["<s>"])]
    )
    return tok


LLAMA2_TOKENIZER_CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "legacy": True,
    "model_max_length": 128,
    "tokenizer_class": "LlamaTokenizer",
}


def make_llama_tokjson(out):
    import sentencepiece as spm

    strings, spm_golden = hard_strings()
    sp = spm.SentencePieceProcessor(model_file=str(TINY_LLAMA / "tokenizer.model"))
    spm_ids = [sp.encode(t) for t in strings]
    same = sum(case["ids"] == ids for case, ids in zip(spm_golden, spm_ids))
    note("sentencepiece reproduces golden/tokenizers.json on %d/%d strings" % (same, len(strings)))

    proto = load_sp_proto(TINY_LLAMA / "tokenizer.model")
    golden = {
        "meta": versions(),
        "strings": strings,
        "sentencepiece_ids": spm_ids,
        "tokenizers": {},
    }
    for layout, dirname in (("legacy", "tiny-llama-tokjson"), ("metaspace", "tiny-llama-tokjson-metaspace")):
        tok = llama_sentencepiece_style_tokenizer(proto, layout)
        d = out / dirname
        d.mkdir(parents=True, exist_ok=True)
        tok.save(str(d / "tokenizer.json"))
        config = dict(LLAMA2_TOKENIZER_CONFIG, legacy=(layout == "legacy"))
        write_json(d / "tokenizer_config.json", config)
        # Reload from the written file, so the goldens are what the file says.
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        cases = encode_cases(tok, strings)
        agree = [c["ids"] == s for c, s in zip(cases, spm_ids)]
        golden["tokenizers"][dirname] = {"cases": cases, "agrees_with_sentencepiece": agree}
        note("%s: ids equal to sentencepiece on %d/%d strings" % (dirname, sum(agree), len(agree)))

    # What transformers itself writes when it converts tokenizer.model (its own converter and layout).
    dirname = "tiny-llama-tokjson-transformers"
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(TINY_LLAMA))
        tmp = out / (dirname + ".tmp")
        hf.save_pretrained(str(tmp))
        check((tmp / "tokenizer.json").exists(), "transformers wrote tokenizer.json")
        d = out / dirname
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / "tokenizer.json", d / "tokenizer.json")
        if (tmp / "tokenizer_config.json").exists():
            shutil.copy(tmp / "tokenizer_config.json", d / "tokenizer_config.json")
        shutil.rmtree(tmp)
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        cases = encode_cases(tok, strings)
        hf_ids = [hf(t, add_special_tokens=False)["input_ids"] for t in strings]
        agree = [c["ids"] == s for c, s in zip(cases, spm_ids)]
        golden["tokenizers"][dirname] = {
            "cases": cases,
            "agrees_with_sentencepiece": agree,
            "transformers_class": type(hf).__name__,
            "transformers_ids": hf_ids,
        }
        note("%s (%s): ids equal to sentencepiece on %d/%d strings" % (dirname, type(hf).__name__, sum(agree), len(agree)))
    except Exception as e:  # the two files above are the required ones; this one is informative
        note("WARNING: transformers could not convert tokenizer.model (%s: %s); %s not written" % (type(e).__name__, e, dirname))
        shutil.rmtree(out / dirname, ignore_errors=True)
        shutil.rmtree(out / (dirname + ".tmp"), ignore_errors=True)

    write_json(out / "golden" / "tiny-llama-tokjson.json", golden)


# ---------------------------------------------------------------------------------------------
# Byte-level BPE tokenizers trained with `tokenizers`
# ---------------------------------------------------------------------------------------------


def train_byte_level_bpe(split_pattern, nfc, vocab_size, special_tokens, ignore_merges):
    tok = Tokenizer(BPE(dropout=None, fuse_unk=False, byte_fallback=False))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [line for _ in range(3) for line in CORPUS_LINES] + EXTRA_BYTE_LEVEL_STRINGS
    tok.train_from_iterator(corpus, trainer=trainer)
    # Special tokens after the trained vocabulary, as in Llama 3 and Qwen2.
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in special_tokens])
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = bool(ignore_merges)
    tok = Tokenizer.from_str(json.dumps(j))
    check(len(j["model"]["merges"]) > 50, "the trained tokenizer has merges")
    return tok


def versions():
    import peft

    return {
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "torch": torch.__version__,
        "peft": peft.__version__,
    }


def transformers_major():
    return int(transformers.__version__.split(".")[0])


def dtype_kwarg():
    return {"dtype": torch.float32} if transformers_major() >= 5 else {"torch_dtype": torch.float32}


def padded_vocab(n):
    return (n + 7) // 8 * 8


def rope_config_forms(theta, scaling):
    """rope settings for a config constructor, newest layout first: transformers 5 takes
    rope_parameters, 4 takes rope_theta/rope_scaling. Which one took is checked by the inverse
    frequencies the model ends up with."""
    params = dict(scaling, rope_theta=theta) if scaling else {"rope_type": "default", "rope_theta": theta}
    legacy = {"rope_theta": theta}
    if scaling:
        legacy["rope_scaling"] = dict(scaling)
    forms = [{"rope_parameters": params}, legacy]
    return forms if transformers_major() >= 5 else forms[::-1]


def inv_freq_matches(model, expect):
    got = model.model.rotary_emb.inv_freq.double().tolist()
    return len(got) == len(expect) and all(abs(e - g) <= 1e-6 * e for e, g in zip(expect, got))


def build_model(config_cls, model_cls, kwargs, theta, scaling, expect_inv_freq, seed):
    errors = []
    for rope in rope_config_forms(theta, scaling):
        try:
            torch.manual_seed(seed)
            config = config_cls(**kwargs, **rope)
            model = model_cls(config).eval().float()
        except Exception as e:
            errors.append("%s: %s: %s" % (sorted(rope), type(e).__name__, e))
            continue
        if inv_freq_matches(model, expect_inv_freq):
            scaling_attr = float(getattr(model.model.rotary_emb, "attention_scaling", 1.0))
            check(abs(scaling_attr - 1.0) < 1e-12, "rotary attention scaling is 1")
            return model
        errors.append("%s: inverse frequencies %r, expected %r" % (sorted(rope), model.model.rotary_emb.inv_freq.tolist(), expect_inv_freq))
    raise RuntimeError("could not build %s with the rope settings:\n  " % model_cls.__name__ + "\n  ".join(errors))


def perturb_norms(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))


def forward_logits(model, input_ids):
    with torch.no_grad():
        return model(input_ids=input_ids, use_cache=False).logits.float().contiguous()


def greedy(model, prompt, steps):
    """Greedy decoding by full recomputation, no EOS stop; also the top-1/top-2 gap at each step."""
    ids = list(prompt)
    margins = []
    for _ in range(steps):
        logits = forward_logits(model, torch.tensor([ids]))[0, -1]
        top = torch.topk(logits, 2)
        margins.append(float(top.values[0] - top.values[1]))
        ids.append(int(top.indices[0]))
    return ids[len(prompt):], margins


def fixed_input_ids(gen, low, high, first=None):
    ids = torch.randint(low, high, (2, 24), generator=gen, dtype=torch.long)
    if first is not None:
        ids[:, 0] = first
    return ids


# ---------------------------------------------------------------------------------------------
# 2. tiny Llama 3
# ---------------------------------------------------------------------------------------------

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # 64 (not 32) so that the head's 8 frequencies fall in all three bands of the llama3 rule:
    # wavelengths 6.3 (< 16: kept), 32.5 (16..64: smoothed), >= 168 (> 64: divided by factor).
    "original_max_position_embeddings": 64,
}
LLAMA3_THETA = 500000.0


def llama3_inv_freq_reference(head_dim, theta, s):
    """transformers' _compute_llama3_parameters, in float64."""
    inv = [1.0 / theta ** (2 * i / head_dim) for i in range(head_dim // 2)]
    low_wavelen = s["original_max_position_embeddings"] / s["low_freq_factor"]
    high_wavelen = s["original_max_position_embeddings"] / s["high_freq_factor"]
    out = []
    for f in inv:
        wavelen = 2 * math.pi / f
        if wavelen > low_wavelen:
            g = f / s["factor"]
        elif wavelen < high_wavelen:
            g = f
        else:
            smooth = (s["original_max_position_embeddings"] / wavelen - s["low_freq_factor"]) / (
                s["high_freq_factor"] - s["low_freq_factor"]
            )
            g = (1 - smooth) * f / s["factor"] + smooth * f
        out.append(g)
    return out


def make_llama3(out, strings):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = train_byte_level_bpe(LLAMA3_SPLIT, nfc=False, vocab_size=384, special_tokens=specials, ignore_merges=True)
    bos = tok.token_to_id("<|begin_of_text|>")
    eos = [tok.token_to_id("<|end_of_text|>"), tok.token_to_id("<|eot_id|>")]
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                special_tokens=[("<|begin_of_text|>", bos)],
            ),
        ]
    )
    n_tokens = tok.get_vocab_size(with_added_tokens=True)
    vocab_size = padded_vocab(n_tokens)

    head_dim = 64 // 4
    expect = llama3_inv_freq_reference(head_dim, LLAMA3_THETA, LLAMA3_SCALING)
    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        initializer_range=0.2,
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        attention_bias=False,
        mlp_bias=False,
        attn_implementation="eager",
    )
    model = build_model(LlamaConfig, LlamaForCausalLM, kwargs, LLAMA3_THETA, LLAMA3_SCALING, expect, seed=0)
    gen = torch.Generator().manual_seed(1)
    perturb_norms(model, gen)

    d = out / "tiny-llama3"
    model.save_pretrained(str(d))
    check((d / "model.safetensors").exists(), "save_pretrained wrote model.safetensors")
    GenerationConfig(bos_token_id=bos, eos_token_id=eos, do_sample=False).save_pretrained(str(d))
    tok.save(str(d / "tokenizer.json"))
    write_json(
        d / "tokenizer_config.json",
        {
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|eot_id|>",
            "model_max_length": 128,
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )
    # config.json as the published Llama 3.1 checkpoints lay it out (rope_theta + rope_scaling);
    # the file transformers wrote is kept as config-v5-style.json (both layouts must load).
    written = json.loads((d / "config.json").read_text())
    write_json(out / "golden" / "config-v5-style" / "tiny-llama3.json", written)
    hub = {k: v for k, v in written.items() if k not in ("rope_parameters", "rope_scaling", "rope_theta")}
    hub["rope_theta"] = LLAMA3_THETA
    hub["rope_scaling"] = dict(LLAMA3_SCALING)
    hub["eos_token_id"] = eos
    hub["bos_token_id"] = bos
    hub["torch_dtype"] = "float32"
    write_json(d / "config.json", hub)
    reloaded = LlamaForCausalLM.from_pretrained(str(d), attn_implementation="eager", **dtype_kwarg()).eval()
    if not inv_freq_matches(reloaded, expect):
        note("WARNING: transformers does not reload the hub-style config.json with llama3 scaling")

    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    input_ids = fixed_input_ids(torch.Generator().manual_seed(2), 0, n_tokens - len(specials), first=bos)
    logits = forward_logits(model, input_ids)
    reload_diff = float((logits - forward_logits(reloaded, input_ids)).abs().max())
    if reload_diff > 1e-5:
        note("WARNING: tiny-llama3 reloaded from config.json differs by %g" % reload_diff)
    save_file({"input_ids": input_ids, "logits": logits}, str(out / "golden" / "tiny-llama3-logits.safetensors"), metadata={"format": "pt"})

    prompt = tok.encode("The capital of France is", add_special_tokens=True).ids
    check(prompt[0] == bos, "the post-processor adds <|begin_of_text|>")
    greedy_out, margins = greedy(model, prompt, 12)

    cases = encode_cases(tok, strings + EXTRA_BYTE_LEVEL_STRINGS)
    for c in cases:
        check(c["ids_with_special"][:1] == [bos], "BOS first in %r" % c["text"])
    write_json(
        out / "golden" / "tiny-llama3.json",
        {
            "meta": versions(),
            "bos_token_id": bos,
            "eos_token_id": eos,
            "vocab_size": vocab_size,
            "rope_scaling": LLAMA3_SCALING,
            "rope_theta": LLAMA3_THETA,
            "inv_freq_reference": expect,
            "inv_freq_transformers": [float(x) for x in model.model.rotary_emb.inv_freq.tolist()],
            "greedy_prompt": prompt,
            "greedy_out": greedy_out,
            "greedy_margins": margins,
            "tokenizer_cases": cases,
        },
    )
    cross_check_with_auto_tokenizer(d, cases)
    note("tiny-llama3: vocab %d (%d tokens), bos %d, eos %s, greedy %s (min margin %.3g)" % (vocab_size, n_tokens, bos, eos, greedy_out, min(margins)))


def cross_check_with_auto_tokenizer(d, cases):
    """The same file loaded through transformers' PreTrainedTokenizerFast must give the same ids."""
    try:
        from transformers import PreTrainedTokenizerFast

        hf = PreTrainedTokenizerFast(tokenizer_file=str(d / "tokenizer.json"))
        bad = [c["text"] for c in cases if hf(c["text"], add_special_tokens=True)["input_ids"] != c["ids_with_special"]]
        if bad:
            note("WARNING: %s: PreTrainedTokenizerFast differs from tokenizers on %r" % (d.name, bad))
        else:
            note("%s: PreTrainedTokenizerFast agrees with tokenizers on all %d strings" % (d.name, len(cases)))
    except Exception as e:
        note("WARNING: %s: PreTrainedTokenizerFast cross-check failed: %s: %s" % (d.name, type(e).__name__, e))


# ---------------------------------------------------------------------------------------------
# 3. tiny Qwen2 + PEFT LoRA
# ---------------------------------------------------------------------------------------------

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_qwen2(out, strings):
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM
    from peft import LoraConfig, get_peft_model

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = train_byte_level_bpe(QWEN2_SPLIT, nfc=True, vocab_size=352, special_tokens=specials, ignore_merges=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    endoftext = tok.token_to_id("<|endoftext|>")
    im_end = tok.token_to_id("<|im_end|>")
    n_tokens = tok.get_vocab_size(with_added_tokens=True)
    vocab_size = padded_vocab(n_tokens)

    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        initializer_range=0.2,
        tie_word_embeddings=True,
        use_sliding_window=False,
        attn_implementation="eager",
        bos_token_id=endoftext,
        eos_token_id=endoftext,
    )
    expect_qwen = [1.0 / (1000000.0 ** (i / 16)) for i in range(0, 16, 2)]
    model = build_model(Qwen2Config, Qwen2ForCausalLM, kwargs, 1000000.0, None, expect_qwen, seed=7)
    gen = torch.Generator().manual_seed(11)
    perturb_norms(model, gen)
    with torch.no_grad():
        for layer in model.model.layers:
            attn = layer.self_attn
            for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
                check(proj.bias is not None, "Qwen2 q/k/v projections have biases")
                proj.bias.copy_(0.2 * torch.randn(proj.bias.shape, generator=gen))
            check(attn.o_proj.bias is None, "Qwen2 o_proj has no bias")
    check(model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "Qwen2 head is tied to the embedding")

    d = out / "tiny-qwen2"
    model.save_pretrained(str(d))
    check((d / "model.safetensors").exists(), "save_pretrained wrote model.safetensors")
    weights = load_file(str(d / "model.safetensors"))
    if "lm_head.weight" in weights:  # a tied checkpoint ships no head, as the published Qwen2 files
        del weights["lm_head.weight"]
        save_file(weights, str(d / "model.safetensors"), metadata={"format": "pt"})
        note("tiny-qwen2: removed lm_head.weight that save_pretrained wrote for a tied head")
    GenerationConfig(bos_token_id=endoftext, eos_token_id=[im_end, endoftext], do_sample=False).save_pretrained(str(d))
    tok.save(str(d / "tokenizer.json"))
    write_json(
        d / "tokenizer_config.json",
        {
            "bos_token": None,
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "model_max_length": 128,
            "tokenizer_class": "Qwen2Tokenizer",
        },
    )
    written = json.loads((d / "config.json").read_text())
    write_json(out / "golden" / "config-v5-style" / "tiny-qwen2.json", written)
    hub = {k: v for k, v in written.items() if k not in ("rope_parameters", "rope_scaling", "rope_theta")}
    hub["rope_theta"] = 1000000.0
    hub["rope_scaling"] = None
    hub["torch_dtype"] = "float32"
    write_json(d / "config.json", hub)

    reloaded = Qwen2ForCausalLM.from_pretrained(str(d), attn_implementation="eager", **dtype_kwarg()).eval()
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    input_ids = fixed_input_ids(torch.Generator().manual_seed(12), 0, n_tokens - len(specials))
    logits = forward_logits(model, input_ids)
    reload_diff = float((logits - forward_logits(reloaded, input_ids)).abs().max())
    if reload_diff > 1e-5:
        note("WARNING: tiny-qwen2 reloaded from config.json differs by %g" % reload_diff)

    prompt = tok.encode("The capital of France is", add_special_tokens=True).ids
    greedy_out, margins = greedy(model, prompt, 12)

    lora_config = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, bias="none", target_modules=LORA_TARGETS, init_lora_weights=False
    )
    peft_model = get_peft_model(model, lora_config)
    lora_gen = torch.Generator().manual_seed(13)
    n_lora = 0
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=lora_gen))
                n_lora += 1
    check(n_lora == 2 * len(LORA_TARGETS) * 2, "LoRA on all seven projections of both layers (%d tensors)" % n_lora)
    peft_model.eval()
    logits_lora = forward_logits(peft_model, input_ids)
    adapter_dir = out / "golden" / "tiny-qwen2-lora-adapter"
    peft_model.save_pretrained(str(adapter_dir))
    merged = peft_model.merge_and_unload()
    logits_merged = forward_logits(merged, input_ids)
    lora_effect = float((logits_lora - logits).abs().max())
    merge_diff = float((logits_lora - logits_merged).abs().max())
    check(lora_effect > 1e-2, "the adapter changes the logits (%g)" % lora_effect)
    check(merge_diff < 1e-4, "merged logits equal adapter logits (%g)" % merge_diff)

    save_file(
        {"input_ids": input_ids, "logits": logits, "logits_lora": logits_lora, "logits_merged": logits_merged},
        str(out / "golden" / "tiny-qwen2-logits.safetensors"),
        metadata={"format": "pt"},
    )
    cases = encode_cases(tok, strings + EXTRA_BYTE_LEVEL_STRINGS)
    write_json(
        out / "golden" / "tiny-qwen2.json",
        {
            "meta": versions(),
            "eos_token_id": [im_end, endoftext],
            "vocab_size": vocab_size,
            "greedy_prompt": prompt,
            "greedy_out": greedy_out,
            "greedy_margins": margins,
            "max_abs_diff_lora_vs_base": lora_effect,
            "max_abs_diff_lora_vs_merged": merge_diff,
            "tokenizer_cases": cases,
        },
    )
    cross_check_with_auto_tokenizer(d, cases)
    note("tiny-qwen2: vocab %d (%d tokens), greedy %s (min margin %.3g), lora effect %.3g, merge diff %.3g" % (vocab_size, n_tokens, greedy_out, min(margins), lora_effect, merge_diff))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_goldens_issue15.py OUT_DIR")
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    note("versions: %s" % json.dumps(versions()))

    make_llama_tokjson(out)
    strings, _ = hard_strings()
    make_llama3(out, strings)
    make_qwen2(out, strings)

    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    note("total size %.2f MB" % (total / 1e6))
    if total >= 2_000_000:
        note("WARNING: outputs are %.2f MB, over the 2 MB aim" % (total / 1e6))
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print("  %8d  %s" % (p.stat().st_size, p.relative_to(out)))
    print("\nSUMMARY")
    for line in SUMMARY:
        print("  " + line)
    print("OK")


if __name__ == "__main__":
    main()
