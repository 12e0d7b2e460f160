"""The model as an fx graph, and what each node is to the quantizer.

Ops are kept as data: each supported node kind is a predicate, and anything else is refused with
the op's name and the line of the model's source that called it.
"""
from __future__ import annotations

import operator

import torch
from torch import fx, nn
from torch.nn import functional as F

from edgeq.errors import EdgeqError
from edgeq.quant.modules import QuantAct, QuantConv2d, QuantLinear

_RELU_MODULES = (nn.ReLU, nn.ReLU6)
_RELU_FUNCTIONS = (F.relu, torch.relu, F.relu6)
_ADD_FUNCTIONS = (operator.add, torch.add, operator.iadd)
_RESHAPE_FUNCTIONS = (torch.flatten, torch.reshape)
_RESHAPE_METHODS = ("flatten", "view", "reshape")
_IDENTITY_MODULES = (nn.Dropout, nn.Identity)


def kind(node: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    """'weighted' | 'relu' | 'add' | 'avgpool' | 'maxpool' | 'reshape' | 'identity' | 'shape' | 'io' | None."""
    if node.op in ("placeholder", "output"):
        return "io"
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, (nn.Conv2d, nn.Linear, QuantConv2d, QuantLinear)):
            return "weighted"
        if isinstance(m, _RELU_MODULES):
            return "relu"
        if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
            return "avgpool"
        if isinstance(m, nn.MaxPool2d):
            return "maxpool"
        if isinstance(m, nn.Flatten):
            return "reshape"
        if isinstance(m, (_IDENTITY_MODULES, QuantAct)):
            return "identity"
        return None
    if node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return "relu"
        if node.target in _ADD_FUNCTIONS and len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args):
            return "add"
        if node.target is F.adaptive_avg_pool2d and node.args[1] in (1, (1, 1), [1, 1]):
            return "avgpool"
        if node.target is F.max_pool2d:
            return "maxpool"
        if node.target in _RESHAPE_FUNCTIONS:
            return "reshape"
        if node.target is operator.getitem and node.args[0].op == "call_method" and node.args[0].target == "size":
            return "shape"
        return None
    if node.op == "call_method":
        if node.target == "relu":
            return "relu"
        if node.target in _RESHAPE_METHODS:
            return "reshape"
        if node.target == "size":
            return "shape"
        if node.target == "add" and isinstance(node.args[1], fx.Node):
            return "add"
    return None


def is_relu6(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    return (node.op == "call_module" and isinstance(modules[node.target], nn.ReLU6)) or node.target is F.relu6


def describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{type(modules[node.target]).__name__} ({node.target})"
    return getattr(node.target, "__name__", str(node.target))


def source_line(node: fx.Node) -> str:
    """'file.py:123' of the model code that created the node, from fx's recorded stack trace."""
    trace = (node.stack_trace or "").strip().splitlines()
    for line in reversed(trace):
        line = line.strip()
        if line.startswith("File ") and "/torch/" not in line:
            parts = line.split(",")
            return f"{parts[0][5:].strip(chr(34))}:{parts[1].strip().removeprefix('line ')}"
    return "unknown source line"


class _Tracer(fx.Tracer):
    def __init__(self):
        super().__init__()
        self.record_stack_traces = True


def trace(model: nn.Module) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # data-dependent control flow and the like
        raise EdgeqError(f"the model cannot be traced by torch.fx ({type(e).__name__}: {str(e).splitlines()[0]})",
                         "remove data-dependent Python control flow from forward()") from None
    gm = fx.GraphModule(model, graph)
    check_supported(gm)
    return gm


def check_supported(gm: fx.GraphModule) -> None:
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], nn.BatchNorm2d):
            continue  # folded away before quantization
        if node.op == "call_module" and isinstance(modules[node.target], nn.Conv2d) \
                and modules[node.target].padding_mode != "zeros":
            raise EdgeqError(f"Conv2d {node.target} uses padding_mode={modules[node.target].padding_mode!r} "
                             f"at {source_line(node)}, which has no quantized lowering", "use padding_mode='zeros'")
        if kind(node, modules) is None and node.op != "get_attr":
            raise EdgeqError(f"op {describe(node, modules)} at {source_line(node)} has no quantized lowering",
                             "replace it with a supported op (Conv2d, Linear, ReLU/ReLU6, add, max/avg pool, flatten) "
                             "or keep that part of the model outside the quantized module")
