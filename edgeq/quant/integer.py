"""The integer-only model (HAWQ-V3): int8 storage, int32 accumulation, dyadic requantization.

to_integer() turns a calibrated fake-quant graph into a graph of the modules below. Their forward
is written in integer torch ops only; run eagerly it is the reference executor (quant/reference.py),
exported it is what the compiler sees.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F

from edgeq.errors import EdgeqError
from edgeq.quant.dyadic import Dyadic, requantize, rounding_shift
from edgeq.quant.graph import kind
from edgeq.quant.modules import QuantAct, QuantConv2d, QuantLinear
from edgeq.quant.quantize import producer_of
from edgeq.quant.quantizer import QParams


class _Requant(nn.Module):
    """Holds an optional per-channel dyadic rescale to `out` (None: the int32 accumulator is the output)."""

    def _set_requant(self, m: torch.Tensor | None, out: QParams | None, channel_shape: tuple[int, ...]):
        self.out = out
        if out is None:
            self.c = 0
            return
        d = Dyadic.from_real(m)
        self.c = d.c
        self.register_buffer("b_i64", d.b_tensor(channel_shape))

    def _requant(self, acc_i32: torch.Tensor) -> torch.Tensor:
        if self.out is None:
            return acc_i32
        return requantize(acc_i32, self.b_i64, self.c, self.out.zero_point, self.out.qmin, self.out.qmax)


class IntConv2d(_Requant):
    """acc_i32 = conv(pad(x, zp_x), w_i8) + bias_i32 - zp_x * sum(w); y = requant(acc)."""

    def __init__(self, q: QuantConv2d, out: QParams | None):
        super().__init__()
        conv, qin = q.layer, q.input_qparams
        self.stride, self.dilation, self.groups = conv.stride, conv.dilation, conv.groups
        ph, pw = conv.padding
        self.pad, self.zp_in = (pw, pw, ph, ph), qin.zero_point
        self.register_buffer("w_i8", q.w_q)
        bias = q.quantized_bias() - qin.zero_point * q.w_q.to(torch.int64).sum((1, 2, 3))
        self.register_buffer("bias_i32", bias.to(torch.int32))
        self.acc_scale = qin.scale * q.s_w  # float64 per channel: the real value of one accumulator unit
        self._set_requant(None if out is None else self.acc_scale / out.scale, out, (-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=self.zp_in)  # padding holds the real zero
        acc_i32 = F.conv2d(x.to(torch.int32), self.w_i8.to(torch.int32), self.bias_i32,
                           self.stride, 0, self.dilation, self.groups)
        return self._requant(acc_i32)


class IntLinear(_Requant):
    def __init__(self, q: QuantLinear, out: QParams | None):
        super().__init__()
        qin = q.input_qparams
        self.register_buffer("w_i8", q.w_q)
        bias = q.quantized_bias() - qin.zero_point * q.w_q.to(torch.int64).sum(1)
        self.register_buffer("bias_i32", bias.to(torch.int32))
        self.acc_scale = qin.scale * q.s_w
        self._set_requant(None if out is None else self.acc_scale / out.scale, out, (-1,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acc_i32 = F.linear(x.to(torch.int32), self.w_i8.to(torch.int32), self.bias_i32)
        return self._requant(acc_i32)


class IntAdd(nn.Module):
    """Residual addition rescaled to the output: y = round(((a - za) * ba + (b - zb) * bb) / 2^c) + zo.

    All in int32: |a - za| <= 255 and ba, bb < 2^21 keep the sum and its rounding term below 2^31
    (21-bit multipliers still resolve 1/2^20 of an output step)."""

    B_BITS = 21

    def __init__(self, qa: QParams, qb: QParams, out: QParams):
        super().__init__()
        d = Dyadic.from_real([qa.scale / out.scale, qb.scale / out.scale], b_bits=self.B_BITS)
        if d.c > 30:
            d = Dyadic(tuple(round(b / 2 ** (d.c - 30)) for b in d.b), 30)
        self.ba, self.bb, self.c = d.b[0], d.b[1], d.c
        self.za, self.zb, self.out = qa.zero_point, qb.zero_point, out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        acc_i32 = (a.to(torch.int32) - self.za) * self.ba + (b.to(torch.int32) - self.zb) * self.bb
        y = rounding_shift(acc_i32, self.c) + self.out.zero_point
        return y.clamp(self.out.qmin, self.out.qmax).to(torch.int8)


class IntGlobalAvgPool(_Requant):
    """Mean over H, W as an int32 sum and a dyadic rescale by s_in / (H * W * s_out)."""

    def __init__(self, qin: QParams, hw: int, out: QParams):
        super().__init__()
        self.zp_sum = qin.zero_point * hw
        self._set_requant(torch.tensor([qin.scale / (hw * out.scale)]), out, (1,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acc_i32 = x.to(torch.int32).sum((2, 3), keepdim=True, dtype=torch.int32) - self.zp_sum
        return self._requant(acc_i32)


@dataclass
class IntegerModel:
    """The integer graph and how to cross its boundary: float -> int8 input, output -> float."""

    graph_module: fx.GraphModule
    input_qparams: QParams
    output_scale: torch.Tensor          # float64; per channel for int32 logits
    output_zero_point: int = 0

    def weighted_layers(self) -> list[dict]:
        """Conv and linear layers in graph order (the order their contractions take in the exported IR)."""
        modules = dict(self.graph_module.named_modules())
        return [{"name": n.target, "weight": list(modules[n.target].w_i8.shape)} for n in self.graph_module.graph.nodes
                if n.op == "call_module" and isinstance(modules[n.target], (IntConv2d, IntLinear))]

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.input_qparams.quantize(x)

    def dequantize_output(self, y: torch.Tensor) -> torch.Tensor:
        scale = self.output_scale
        if scale.numel() > 1:  # per output channel, on dim 1
            scale = scale.view(-1, *[1] * (y.dim() - 2))
        return ((y.double() - self.output_zero_point) * scale).float()


def to_integer(qgm: fx.GraphModule, example: torch.Tensor) -> IntegerModel:
    """Lower a calibrated fake-quant graph (from quantize()) to integer modules. `example` fixes spatial sizes."""
    modules = dict(qgm.named_modules())
    with torch.no_grad():
        ShapeProp(qgm).propagate(example)  # spatial sizes for the average pools

    graph, env, subs = fx.Graph(), {}, {}
    fused: set[fx.Node] = set()  # producers (and their ReLU) emitted with the QuantAct that follows them
    for node in qgm.graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], QuantAct):
            src = node.args[0]
            if kind(src, modules) == "relu" and src.args[0].op != "placeholder":
                fused |= {src, src.args[0]}
            elif src.op != "placeholder":
                fused.add(src)

    def qparams(n: fx.Node) -> QParams:
        return modules[producer_of(n, modules).target].qparams

    for node in qgm.graph.nodes:
        k = kind(node, modules)
        is_act = node.op == "call_module" and isinstance(modules[node.target], QuantAct)
        if node.op == "placeholder":
            env[node] = graph.placeholder(node.name)
        elif is_act or k == "weighted" and node not in fused:
            out = modules[node.target].qparams if is_act else None
            src = node.args[0] if is_act else node
            if src.op == "placeholder":
                env[node] = env[src]
                continue
            if kind(src, modules) == "relu":
                src = src.args[0]
            name = src.target if src.op == "call_module" else f"{src.name}_int"
            sk = kind(src, modules)
            if sk == "weighted":
                q = modules[src.target]
                subs[name] = (IntConv2d if isinstance(q, QuantConv2d) else IntLinear)(q, out)
                args = (env[src.args[0]],)
            elif sk == "add":
                subs[name] = IntAdd(qparams(src.args[0]), qparams(src.args[1]), out)
                args = (env[src.args[0]], env[src.args[1]])
            elif sk == "avgpool":
                _, _, h, w = src.args[0].meta["tensor_meta"].shape
                hw = h * w
                subs[name] = IntGlobalAvgPool(qparams(src.args[0]), hw, out)
                args = (env[src.args[0]],)
            else:
                raise ValueError(f"QuantAct after unsupported producer {src.name}")
            env[node] = graph.call_module(name, args)
        elif node in fused:
            continue
        elif k == "relu":  # standalone: clamp at the real zero of its input
            env[node] = graph.call_method("clamp", (env[node.args[0]], qparams(node.args[0]).zero_point))
        elif k == "identity":
            env[node] = env[node.args[0]]
        elif node.op == "output":
            graph.output(fx.map_arg(node.args[0], lambda n: env[n]))
        else:  # maxpool, reshape, shape: same op on the integer value
            if node.op == "call_module":
                subs[node.target] = modules[node.target]
            env[node] = graph.node_copy(node, lambda n: env[n])

    out_node = next(n for n in qgm.graph.nodes if n.op == "output").args[0]
    if isinstance(out_node, (tuple, list)):
        raise EdgeqError("the model returns several outputs", "return one tensor from forward() (wrap the model)")
    last = out_node if kind(out_node, modules) == "weighted" else producer_of(out_node, modules)
    if kind(last, modules) == "weighted":
        out_scale, out_zp = subs[last.target].acc_scale, 0
    else:
        out_scale, out_zp = torch.tensor(modules[last.target].qparams.scale, dtype=torch.float64), \
            modules[last.target].qparams.zero_point
    input_act = next(u for n in qgm.graph.nodes if n.op == "placeholder" for u in n.users)
    gm = fx.GraphModule(subs, graph)
    return IntegerModel(gm.eval(), modules[input_act.target].qparams, out_scale, out_zp)
