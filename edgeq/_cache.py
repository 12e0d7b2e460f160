"""The one cache directory: $EDGEQ_CACHE, else $XDG_CACHE_HOME/edgeq, else ~/.cache/edgeq."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    root = os.environ.get("EDGEQ_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgeq"
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
