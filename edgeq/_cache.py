"""The one cache directory: $EDGEQ_CACHE, else $XDG_CACHE_HOME/edgeq, else ~/.cache/edgeq; content keys and
atomic writes, so that an entry is named by what it was computed from and a killed run never leaves half a file."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import torch


def cache_dir(*parts: str) -> Path:
    root = os.environ.get("EDGEQ_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgeq"
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_key(text: str, tensors: Iterable[tuple[str, torch.Tensor | None]], settings: dict) -> str:
    """sha256 of a text (e.g. the model's code), named tensors (dtype, shape and bytes) and settings (JSON)."""
    h = hashlib.sha256(text.encode())
    for name, t in tensors:
        h.update(name.encode())
        if t is not None:
            t = t.detach().contiguous().cpu()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:24]


def write_atomic(path: Path, text: str) -> None:
    """Write beside, then rename: readers see the old entry or the whole new one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
