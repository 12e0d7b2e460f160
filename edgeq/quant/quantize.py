"""quantize(model, plan, calibration): fold BN, swap in Quant* modules, place QuantActs, calibrate.

A QuantAct goes after every producer of a new value range (the input, conv/linear, add, average pool),
after the ReLU that follows it when there is one (HAWQ-V3 fuses the two). Max-pool, reshape and
dropout pass the quantized value through unchanged. A weighted layer whose output is the model's
output keeps its int32 accumulator: the logits are not requantized.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import fx, nn

from edgeq.quant.fold import fold_batchnorms
from edgeq.quant.graph import is_relu6, kind, trace
from edgeq.quant.modules import QuantAct, QuantConv2d, QuantLinear
from edgeq.quant.plan import Plan

_TRANSPARENT = ("maxpool", "reshape", "identity", "relu")


def _consumers(node: fx.Node, modules) -> Iterable[fx.Node]:
    """Users of a value, looking through ops that pass a quantized value on unchanged."""
    for user in node.users:
        if kind(user, modules) in _TRANSPARENT and user.args[0] is node:
            yield from _consumers(user, modules)
        else:
            yield user


def producer_of(node: fx.Node, modules) -> fx.Node:
    """The QuantAct (or placeholder) a value was quantized by, looking back through transparent ops."""
    while not (node.op == "call_module" and isinstance(modules[node.target], QuantAct)):
        if kind(node, modules) not in _TRANSPARENT:
            raise ValueError(f"{node.name} is not reached through a QuantAct")
        node = node.args[0]
    return node


def _act_bits(value: fx.Node, modules, plan: Plan) -> int:
    readers = [u.target for u in _consumers(value, modules) if kind(u, modules) == "weighted"]
    return max((plan.spec(t).a_bits for t in readers), default=plan.default.a_bits)


def _insert_quant_acts(gm: fx.GraphModule, plan: Plan, method: str, percentile: float) -> None:
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        k = kind(node, modules)
        if not (node.op == "placeholder" or k in ("weighted", "add", "avgpool")):
            continue
        value = node
        if len(node.users) == 1 and kind(next(iter(node.users)), modules) == "relu" and node.op != "placeholder":
            value = next(iter(node.users))  # fuse: the QuantAct sits after the ReLU
        if all(u.op == "output" for u in value.users):
            continue  # int32 logits
        clip = 6.0 if is_relu6(value, modules) else None
        name = f"act_{value.name}"
        gm.add_submodule(name, QuantAct(_act_bits(value, modules, plan), clip, method, percentile))
        with gm.graph.inserting_after(value):
            q = gm.graph.call_module(name, (value,))
        value.replace_all_uses_with(q, delete_user_cb=lambda u: u is not q)
        modules = dict(gm.named_modules())


def _swap_weighted(gm: fx.GraphModule, plan: Plan) -> None:
    for node in gm.graph.nodes:
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            if isinstance(m, nn.Conv2d):
                gm.set_submodule(node.target, QuantConv2d(m, plan.spec(node.target).w_bits))
            elif isinstance(m, nn.Linear):
                gm.set_submodule(node.target, QuantLinear(m, plan.spec(node.target).w_bits))


@torch.no_grad()
def quantize(model: nn.Module, plan: Plan, calibration: torch.Tensor, method: str = "minmax",
             percentile: float = 99.99, batch_size: int = 32) -> fx.GraphModule:
    """The fake-quant model, calibrated. Its QuantAct/QuantConv2d/QuantLinear hold every integer parameter."""
    gm = fold_batchnorms(trace(model.eval()))
    _insert_quant_acts(gm, plan, method, percentile)
    _swap_weighted(gm, plan)
    gm.recompile()
    gm.eval()
    for batch in calibration.split(batch_size):
        gm(batch)
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:  # graph order: a layer's input QuantAct is frozen before the layer
        m = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(m, QuantAct):
            m.freeze()
        elif isinstance(m, (QuantConv2d, QuantLinear)):
            m.input_qparams = modules[producer_of(node.args[0], modules).target].qparams
    return gm
