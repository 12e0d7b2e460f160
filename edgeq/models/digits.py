"""`digits`: a small ResNet trained here on scikit-learn's 8x8 handwritten digits (real images).

Trained once, deterministically (fixed seed, one thread), and cached under the edgeq cache directory.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeq._cache import cache_dir
from edgeq.models.resnet import BasicBlock, ResNet

_TRAIN = dict(seed=0, epochs=40, batch=64, lr=3e-3, test_fraction=0.25)
INPUT_SHAPE = (1, 1, 8, 8)


def architecture() -> ResNet:
    return ResNet(BasicBlock, [1, 1], num_classes=10, in_channels=1, widths=(16, 32), small_input=True)


def dataset() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test): images scaled to [0, 1], a fixed stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=_TRAIN["test_fraction"],
                                           random_state=_TRAIN["seed"], stratify=d.target)
    return x[idx_train], y[idx_train], x[idx_test], y[idx_test]


def _train() -> ResNet:
    x, y, _, _ = dataset()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float reductions in a fixed order: the same weights on every machine run
    try:
        g = torch.Generator().manual_seed(_TRAIN["seed"])
        torch.manual_seed(_TRAIN["seed"])
        model = architecture()
        opt = torch.optim.Adam(model.parameters(), lr=_TRAIN["lr"])
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, _TRAIN["epochs"])
        model.train()
        for _ in range(_TRAIN["epochs"]):
            for idx in torch.randperm(len(y), generator=g).split(_TRAIN["batch"]):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def digits() -> ResNet:
    """The trained digits ResNet, from the cache when it is there."""
    key = hashlib.sha256(repr(sorted(_TRAIN.items())).encode()).hexdigest()[:12]
    path = Path(cache_dir("models")) / f"digits-{key}.pt"
    model = architecture()
    if path.exists():
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
        except Exception:  # a torn or corrupt cache file is retrained, never trusted
            path.unlink(missing_ok=True)
    model = _train()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")   # processes training at once each write their own
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean()) * 100.0
