#!/usr/bin/env python3
"""Writes tests/data/tokenizers/parity.safetensors: >= 10,000 varied strings and the ids HF `tokenizers` gives them
under tests/data/tokenizers/gpt2.json and qwen3.json (kept as qwen3.json.tar.xz). The C++ test (test_parity.cpp) requires the same ids for every
string, and decode(encode(s)) == HF's decode (s itself, or NFC(s) under Qwen's NFC normalizer).

Regenerate (deterministic for a given `tokenizers` version; the file records it):

    pip install tokenizers
    python3 tests/tokenizer/make_parity.py

Layout (all tensors 1-D): text.bytes U8 (the UTF-8 strings concatenated), text.offsets I64 [n+1]; for each
tokenizer T in gpt2, qwen3: T.ids I32 (HF's ids concatenated), T.offsets I64 [n+1]; T.decoded_index I64 (the
strings whose HF decode differs from the input) with T.decoded.bytes U8 / T.decoded.offsets I64 holding those
decodes. Metadata: count, tokenizers version, seed.
"""
import json
import os
import random
import struct
import unicodedata

import tokenizers
from make_tokenizers import read_tokenizer
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "tokenizers")
SEED = 20240611

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had by "
         "word but not what all were we when your can said there use an each which she do how their if will up "
         "other about out many then them these so some her would make like him into time has look two more write "
         "go see number no way could people my than first water been call who oil its now find long down day did "
         "get come made may part tokenizer Hugging Face BPE merge vocab GPT Qwen delta rule attention").split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "'Re", "'Ll",
                "'rE", "’s", "’ll", "'x", "''", "'"]
SCRIPTS = {
    "latin": "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿāăąćčďđēęěğīıłńňőœřśşšťūůűźżžßÀÉÎÕÜŸ",
    "greek": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩάέήίόύώϊϋΐΰ",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯіїєґ",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهويءآأؤإئةى",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשתךםןףץ",
    "devanagari": "अआइईउऊऋएऐओऔकखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसहािीुूृेैोौंः्",
    "bengali": "অআইঈউঊএঐওঔকখগঘঙচছজঝঞটঠডঢণতথদধনপফবভমযরলশষসহািীুূেৈোৌ্",
    "tamil": "அஆஇஈஉஊஎஏஐஒஓஔகஙசஞடணதநபமயரலவழளறனாிீுூெேைொோௌ்",
    "thai": "กขฃคฅฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮะัาำิีึืุูเแโใไ่้๊๋",
    "georgian": "აბგდევზთიკლმნოპჟრსტუფქღყშჩცძწჭხჯჰ",
    "armenian": "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆ",
    "ethiopic": "ሀሁሂሃሄህሆለሉሊላሌልሎመሙሚማሜምሞሠሡሢሣሤሥሦ",
    "hangul": "가나다라마바사아자차카타파하한국어조선글말씀밥물불꽃",
    "kana": "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんアイウエオカキクケコサシスセソタチツテトナニヌネノ",
    "cjk": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明",
    "cjk_ext": "𠀀𠀁𠀂𠀃𪚥𪚲𫝀𬺰𰀀",
    "math": "𝐀𝐁𝐂𝐚𝐛𝐜𝑨𝑩𝒂𝓐𝔄𝕬𝖆𝗔𝘼𝙰𝚊𝟎𝟏𝟐𝟑",
    "misc_letters": "ǅǈǋʰʱˀˁ〆々ᴬᴮ",
}
DIGITS = "0123456789٠١٢٣٤٥٦٧٨٩०१२३४५६७८९０１２３４５６７８９²³¹¼½¾ⅠⅡⅢⅫ①②③⑴⒈𝟘𝟙"
PUNCT = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»–—‘’“”…•·€£¥©®™°±×÷§¶†‡‰′″‹›、。，！？：；「」『』（）《》【】"
EMOJI = ["😀", "😂", "🥲", "🤖", "🔥", "🎉", "👍", "❤️", "❤", "✨", "🚀", "🇺🇸", "🇯🇵", "🇩🇪", "🏳️‍🌈", "👩‍💻", "👨‍👩‍👧‍👦",
         "👩🏽‍🚀", "🧑🏿‍🤝‍🧑🏻", "👍🏻", "👍🏼", "👍🏽", "👍🏾", "👍🏿", "🤷🏽‍♀️", "1️⃣", "#️⃣", "☺︎", "☺️", "🫠", "🫶🏾",
         "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👁️‍🗨️", "🐈‍⬛", "\U0001F9D1\u200D\U0001F384"]
SPACES = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", "\r", " \n", "\n ", " \t ", "\u00a0",
          "\u3000", "\u2028", "\u2029", "\u0085", "\u180e", "\u200b", "\u2003", "\u202f", "\u205f", "\u1680", "\x0b",
          "\x0c", "\x1c", "\x1f", "\ufeff", "    ", "\n\n\n", " \r\n "]
COMBINING = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u0323", "\u0327", "\u0328", "\u030a", "\u0331",
             "\u0345", "\u0591", "\u05b0", "\u064b", "\u0670", "\u093c", "\u0951", "\u20d7", "\u0f71", "\u3099",
             "\u309a", "\ufe0f", "\U0001d165", "\u1dc0"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
            "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|vision_pad|>", "<|file_sep|>", "<|repo_name|>",
            "<|box_start|>", "<tool_response>"]
NEAR_SPECIALS = ["<|endoftext|", "<|endoftext", "|endoftext|>", "<|im_start", "<|im_end |>", "<think", "<think >",
                 "</ think>", "<|ENDOFTEXT|>", "<<|im_end|>>", "<|<|endoftext|>|>", "<|endoftext|><|endoftext|>"]
CODE = [
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "if __name__ == \"__main__\":\n    main()\n",
    "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v.size(); }\n",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\\n\"}}",
    "<div class=\"x\"><p>Hello&nbsp;world</p></div>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "$ ls -la | grep '^d' && echo \"done\" >> /tmp/log.txt 2>&1",
    "const re = /^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@example\\.com$/i;",
    "fn main() -> Result<(), Box<dyn Error>> {\n    let x: Vec<u8> = vec![0xff; 16];\n    Ok(())\n}",
    "    \n\t\t    \n        pass\n",
    "x=1;y=2;z=x+y;print(f'{z:>10.3f}')",
    "a_b_c __init__ CamelCaseName snake_case_name kebab-case-name SCREAMING_CASE",
    "https://example.com/path/to/page?query=1&other=two#frag",
    "user@example.org, +1 (555) 123-4567, 2024-06-11T12:34:56Z, 3.14159, 1,000,000.00, 1e-9",
]


def rand_word(r):
    w = r.choice(WORDS)
    return w.upper() if r.random() < 0.1 else (w.capitalize() if r.random() < 0.2 else w)


def rand_chars(r, pool, lo=1, hi=12):
    return "".join(r.choice(pool) for _ in range(r.randint(lo, hi)))


def rand_number(r):
    k = r.random()
    if k < 0.3:
        return str(r.randint(0, 10 ** r.randint(1, 12)))
    if k < 0.5:
        return f"{r.uniform(-1e6, 1e6):.{r.randint(0, 6)}f}"
    if k < 0.6:
        return f"{r.randint(1, 999)},{r.randint(0, 999):03d},{r.randint(0, 999):03d}"
    return rand_chars(r, DIGITS, 1, 8)


def assigned_codepoint(r):
    """A random assigned, non-surrogate code point from all planes (Unicode as Python knows it)."""
    while True:
        plane = r.choice([0, 0, 0, 0, 1, 1, 2, 3, 14, 15])
        cp = plane * 0x10000 + r.randrange(0x10000)
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat == "Cn" and not (0xF0000 <= cp <= 0x10FFFF):
            continue
        return ch


def rand_piece(r):
    k = r.randrange(14)
    if k == 0:
        return rand_word(r) + r.choice(CONTRACTIONS)
    if k == 1:
        return rand_chars(r, r.choice(list(SCRIPTS.values())))
    if k == 2:
        return "".join(r.choice(EMOJI) for _ in range(r.randint(1, 4)))
    if k == 3:
        return r.choice(SPACES)
    if k == 4:
        return rand_number(r)
    if k == 5:
        return rand_chars(r, PUNCT, 1, 5)
    if k == 6:
        base = rand_chars(r, "aeiouAEIOUnNcCsSzZαοиеאاक가", 1, 3)
        return base + "".join(r.choice(COMBINING) for _ in range(r.randint(1, 4)))
    if k == 7:
        return r.choice(SPECIALS) if r.random() < 0.8 else r.choice(NEAR_SPECIALS)
    if k == 8:
        return "".join(assigned_codepoint(r) for _ in range(r.randint(1, 6)))
    if k == 9:
        return r.choice(CODE)
    if k == 10:
        return chr(r.randrange(0, 0x80)) * r.randint(1, 3)
    if k == 11:
        return chr(r.randrange(0x80, 0x100))
    return rand_word(r)


def sentence(r):
    words = [rand_word(r) for _ in range(r.randint(3, 14))]
    for i in range(len(words)):
        if r.random() < 0.15:
            words[i] += r.choice(CONTRACTIONS)
        if r.random() < 0.1:
            words[i] += r.choice(",.;:!?")
    return " ".join(words)


def make_strings():
    r = random.Random(SEED)
    out = ["", " ", "  ", "\n", "\r\n", "\t", "a", "A", "'s", "'S", "'ſ", "'K", "I'm", "I'M", "don't", "DON'T",
           "Hello world", " Hello world", "Hello  world ", "hello\n\nworld", "x\r\ny", "x\ry", "\u00e9", "e\u0301",
           "\u1100\u1161\u11a8", "\ufb01", "\u2126", "\u212b", "Å", "ﬃ", "x\u0000y", "\u0000", "\x7f", "\x80", "\uffff",
           "\ufffe", "\U0010fffd", "\U000f0000", "\ue000", "\ufffd", "\ufeffBOM", "\u200d", "\u200c", "\u0085\u0085",
           "\u180e\u180e", "a\u00a0\u00a0b", "<|endoftext|>", " <|endoftext|> ", "<|endoftext|><|endoftext|>",
           "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
           "<think>\nreasoning\n</think>\n\nanswer", "a<|endoftext|>b", "endoftext", "<|", "|>", "<>",
           " " * 100, "\n" * 50, "a" * 300, "1" * 200, "🙂" * 60, "ab" * 150, "\t" * 70, " \n" * 40, "." * 120,
           "αβγ" * 40, "的" * 90, "x" + " " * 64 + "y", "'" * 30, "'s" * 40]
    for c in range(0x80):
        out.append(chr(c))
        out.append("a" + chr(c) + "b")
    for c in range(0x80, 0x100):
        out.append(chr(c))
    for name, pool in SCRIPTS.items():
        for _ in range(60):
            out.append(rand_chars(r, pool, 1, 30) + r.choice(["", " ", ". ", "\n"]) + rand_chars(r, pool, 0, 20))
    for e in EMOJI:
        out.append(e)
        out.append("x" + e + "y")
        out.append(e * 3)
        out.append(" " + e + " " + e)
    for sp in SPACES:
        for _ in range(8):
            out.append(rand_word(r) + sp * r.randint(1, 4) + rand_word(r) + (sp if r.random() < 0.5 else ""))
    for c in CONTRACTIONS:
        for w in ["he", "HE", "It", "they", "we", "I", "you", "x", "1", " ", ""]:
            out.append(w + c)
            out.append(w + c + " ok")
    for code in CODE:
        out.append(code)
        out.append(code.replace("    ", "\t"))
        out.append(code.replace("\n", "\r\n"))
    for s in SPECIALS + NEAR_SPECIALS:
        out.append(s)
        out.append("text" + s + "text")
        out.append(" " + s + "\n")
        out.append(s + s)
    for _ in range(2500):
        out.append(sentence(r))
    for _ in range(5500):
        out.append("".join(rand_piece(r) for _ in range(r.randint(1, 6))))
    for _ in range(300):
        out.append("".join(assigned_codepoint(r) for _ in range(r.randint(1, 40))))
    for _ in range(40):
        out.append(" ".join(sentence(r) for _ in range(r.randint(5, 20))))
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, dtype, data in tensors:
        header[name] = {"dtype": dtype, "shape": [len(data) // {"U8": 1, "I32": 4, "I64": 8}[dtype]],
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def concat(parts, fmt):
    data = b"".join(struct.pack(f"<{len(p)}{fmt}", *p) if fmt != "s" else p for p in parts)
    offsets = [0]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    return data, struct.pack(f"<{len(offsets)}q", *offsets)


def main():
    strings = make_strings()
    assert len(strings) >= 10000, len(strings)
    encoded = [s.encode("utf-8") for s in strings]
    text_bytes, text_offsets = concat(encoded, "s")
    tensors = [("text.bytes", "U8", text_bytes), ("text.offsets", "I64", text_offsets)]
    stats = {}
    for name in ("gpt2", "qwen3"):
        tok = Tokenizer.from_str(read_tokenizer(name + ".json"))
        ids = [e.ids for e in tok.encode_batch(strings, add_special_tokens=False)]
        decoded = tok.decode_batch(ids, skip_special_tokens=False)
        differs = [i for i, (s, d) in enumerate(zip(strings, decoded)) if s != d]
        data, offs = concat(ids, "i")
        dec_bytes, dec_offs = concat([decoded[i].encode("utf-8") for i in differs], "s")
        tensors += [(f"{name}.ids", "I32", data), (f"{name}.offsets", "I64", offs),
                    (f"{name}.decoded_index", "I64", struct.pack(f"<{len(differs)}q", *differs)),
                    (f"{name}.decoded.bytes", "U8", dec_bytes), (f"{name}.decoded.offsets", "I64", dec_offs)]
        stats[name] = (sum(len(x) for x in ids), len(differs))
    meta = {"count": str(len(strings)), "tokenizers": tokenizers.__version__, "seed": str(SEED),
            "made_by": "tests/tokenizer/make_parity.py"}
    path = os.path.join(DATA, "parity.safetensors")
    write_safetensors(path, tensors, meta)
    print(f"wrote {path}: {len(strings)} strings, {len(text_bytes)} text bytes, ids/decode-differs {stats}, "
          f"{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
