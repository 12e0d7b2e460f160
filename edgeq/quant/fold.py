"""BatchNorm folding: conv -> bn becomes one conv, before weights are quantized (HAWQ-V3 sec. 3.3).

  w' = w * gamma / sqrt(var + eps)      b' = (b - mean) * gamma / sqrt(var + eps) + beta
"""
from __future__ import annotations

import torch
from torch import fx, nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    with torch.no_grad():
        inv_std = (bn.running_var.double() + bn.eps).rsqrt()
        gamma = (bn.weight.double() if bn.affine else torch.ones_like(inv_std)) * inv_std
        beta = bn.bias.double() if bn.affine else torch.zeros_like(inv_std)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(inv_std)
        folded.weight.copy_((conv.weight.double() * gamma.view(-1, 1, 1, 1)).float())
        folded.bias.copy_(((bias - bn.running_mean.double()) * gamma + beta).float())
    return folded


def fold_batchnorms(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every BatchNorm2d whose input is a Conv2d used by nothing else (in eval semantics)."""
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        src = node.args[0]
        if not (isinstance(src, fx.Node) and src.op == "call_module" and isinstance(modules[src.target], nn.Conv2d)
                and len(src.users) == 1):
            continue
        gm.set_submodule(src.target, fold_conv_bn(modules[src.target], modules[node.target]))
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm
