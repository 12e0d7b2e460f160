"""The model zoo, addressed by name (`resnet18`, `resnet50`, `mobilenet_v2`, `digits`) or as `file.py:factory`."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from edgeq.errors import EdgeqError


@dataclass
class Model:
    """A model and what the pipeline needs beside it: its input shape and data to calibrate and evaluate on."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
    calibration: torch.Tensor            # float inputs, (N, *input_shape[1:])
    test_set: tuple[torch.Tensor, torch.Tensor] | None = None  # real held-out data where the zoo has it
    labels: torch.Tensor | None = None   # of the calibration inputs, where the zoo has them


def _random_images(shape: tuple[int, ...], n: int, seed: int = 0) -> torch.Tensor:
    # No ImageNet here: random models are calibrated on seeded N(0, 1) images, which is what normalised inputs look like.
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape[1:]), generator=g)


def _imagenet(name: str, factory: Callable[[], nn.Module]) -> Callable[[], Model]:
    def load() -> Model:
        torch.manual_seed(0)  # no pretrained weights offline: seeded initialisation, BN statistics set below
        module = factory().eval()
        g = torch.Generator().manual_seed(1)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial BN so that folding is exercised
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.data.uniform_(0.5, 1.0, generator=g)
                m.bias.data.normal_(0, 0.1, generator=g)
        shape = (1, 3, 224, 224)
        return Model(name, module, shape, _random_images(shape, 8))
    return load


def _digits() -> Model:
    from edgeq.models import digits as d

    x_train, y_train, x_test, y_test = d.dataset()
    return Model("digits", d.digits(), d.INPUT_SHAPE, x_train[:256], (x_test, y_test), y_train[:256])


def _zoo() -> dict[str, Callable[[], Model]]:
    from edgeq.models.mobilenet import mobilenet_v2
    from edgeq.models.resnet import resnet18, resnet50

    return {"resnet18": _imagenet("resnet18", resnet18), "resnet50": _imagenet("resnet50", resnet50),
            "mobilenet_v2": _imagenet("mobilenet_v2", mobilenet_v2), "digits": _digits}


NAMES = ("digits", "resnet18", "resnet50", "mobilenet_v2")


def load(spec: str, input_shape: tuple[int, ...] | None = None) -> Model:
    """A zoo model by name, or `path/to/file.py:factory` (factory() returns an nn.Module)."""
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        path, factory_name = spec.rsplit(":", 1)
        if not Path(path).is_file():
            raise EdgeqError(f"model file {path!r} not found", "give an existing path as FILE.py:FACTORY")
        module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        mod = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(mod)
        factory = getattr(mod, factory_name, None)
        if factory is None:
            raise EdgeqError(f"{path} has no {factory_name!r}", f"define def {factory_name}() -> nn.Module in {path}")
        shape = tuple(input_shape or getattr(mod, "INPUT_SHAPE", (1, 3, 224, 224)))
        return Model(spec, factory().eval(), shape, _random_images(shape, 8))
    zoo = _zoo()
    if spec not in zoo:
        raise EdgeqError(f"unknown model {spec!r}", f"use one of {', '.join(NAMES)} or FILE.py:FACTORY")
    model = zoo[spec]()
    if input_shape:
        model.input_shape = tuple(input_shape)
        model.calibration = _random_images(model.input_shape, len(model.calibration)) if model.test_set is None \
            else model.calibration
    return model


def load_data(path: str | Path, input_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """User data for a model: a .npy of float inputs, or a .npz with `x` (inputs) and optionally `y` (labels)."""
    import numpy as np

    fix = f"save float inputs of shape (N, {', '.join(map(str, input_shape[1:]))}) as x.npy, or x and y in a .npz"
    try:
        loaded = np.load(path, allow_pickle=False)
        x, y = (loaded["x"], loaded["y"] if "y" in loaded.files else None) if isinstance(loaded, np.lib.npyio.NpzFile) \
            else (loaded, None)
    except FileNotFoundError:
        raise EdgeqError(f"data file {str(path)!r} not found", fix) from None
    except (ValueError, KeyError, OSError, EOFError) as e:
        raise EdgeqError(f"data file {str(path)!r} is unreadable or has no `x` ({e})", fix) from None
    if x.ndim != len(input_shape) or tuple(x.shape[1:]) != tuple(input_shape[1:]):
        raise EdgeqError(f"data in {path} has shape {x.shape}, the model takes {input_shape}", fix)
    if y is not None and (y.shape != (len(x),) or y.dtype.kind not in "iu"):
        raise EdgeqError(f"labels in {path} have shape {y.shape} and dtype {y.dtype}",
                         f"give y as {len(x)} integer class indices")
    return torch.from_numpy(x.astype(np.float32)), None if y is None else torch.from_numpy(y.astype(np.int64))
