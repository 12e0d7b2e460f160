"""IntegerModel -> int8 .tflite holding the same weights, scales and zero points.

The TFLite baseline then runs the very model edgeq compiles, so a latency difference is the runtime's, not the
quantization's. Layout becomes NHWC; PyTorch's symmetric padding becomes SAME where TFLite pads the same way and
an explicit PAD elsewhere (TFLite's SAME puts the odd pixel at the bottom-right). TFLite requantizes with its own
fixed-point multipliers (gemmlowp rounding) instead of edgeq's dyadic numbers, so its int8 values may differ from
edgeq's by an LSB here and there: compare() measures by how much.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from edgeq.errors import EdgeqError
from edgeq.quant.integer import IntAdd, IntConv2d, IntegerModel, IntGlobalAvgPool, IntLinear
from edgeq.quant.quantizer import QParams
from edgeq.tflite import pack, schema


class _Builder:
    """Tensors, constant buffers and operators of one subgraph, packed into a TFLite flatbuffer at the end."""

    def __init__(self):
        self.fb = schema()
        self.tensors, self.operators, self.opcodes = [], [], {}
        self.buffers = [self.fb.BufferT()]   # buffer 0: the empty buffer of every non-constant tensor

    def tensor(self, name: str, shape, dtype: int, q: QParams | None = None, data: np.ndarray | None = None,
               channel_scales: np.ndarray | None = None, channel_axis: int = 0) -> int:
        fb = self.fb
        t = fb.TensorT()
        t.name, t.shape, t.type, t.buffer = name, [int(d) for d in shape], dtype, 0
        if data is not None:
            buf = fb.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if q is not None or channel_scales is not None:
            p = fb.QuantizationParametersT()
            if channel_scales is not None:   # symmetric per channel: weights and their int32 biases
                p.scale, p.zeroPoint = [float(s) for s in channel_scales], [0] * len(channel_scales)
                p.quantizedDimension = channel_axis
            else:
                p.scale, p.zeroPoint = [float(q.scale)], [int(q.zero_point)]
            t.quantization = p
        self.tensors.append(t)
        return len(self.tensors) - 1

    def constant_i32(self, name: str, values) -> int:
        v = np.asarray(values, np.int32)
        return self.tensor(name, v.shape, self.fb.TensorType.INT32, data=v)

    def op(self, code: int, inputs: list[int], outputs: list[int], options=None, options_type: int = 0) -> None:
        self.opcodes.setdefault(code, len(self.opcodes))
        o = self.fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.opcodes[code], inputs, outputs
        if options is not None:
            o.builtinOptionsType, o.builtinOptions = options_type, options
        self.operators.append(o)

    def pack(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        fb = self.fb
        sg = fb.SubGraphT()
        sg.tensors, sg.inputs, sg.outputs, sg.operators, sg.name = self.tensors, inputs, outputs, self.operators, "main"
        m = fb.ModelT()
        m.version, m.description, m.subgraphs, m.buffers = 3, description, [sg], self.buffers
        codes = [None] * len(self.opcodes)
        for code, i in self.opcodes.items():
            codes[i] = fb.OperatorCodeT()
            codes[i].builtinCode, codes[i].deprecatedBuiltinCode, codes[i].version = code, min(code, 127), 1
        m.operatorCodes = codes
        return pack(m)


def _nhwc(shape) -> list[int]:
    return [shape[0], shape[2], shape[3], shape[1]] if len(shape) == 4 else list(shape)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def to_tflite(model: IntegerModel, example: torch.Tensor, calibration: torch.Tensor, path: str | Path) -> Path:
    """Write `model` as an int8 TFLite flatbuffer (int8 NHWC input, int8 output) to `path`.

    An int32 output (the logits of a final linear layer) becomes int8, its scale fixed by the largest logit
    on `calibration`: TFLite's int8 kernels have no int32 output."""
    gm = model.graph_module
    mods = dict(gm.named_modules())
    x_i8 = model.quantize_input(example)
    with torch.no_grad():
        ShapeProp(gm).propagate(x_i8)
    b, fb = _Builder(), schema()
    I8, ACT = fb.TensorType.INT8, fb.ActivationFunctionType
    env: dict = {}            # fx node -> (tensor index, QParams, NCHW shape)

    def out_q(node, m) -> QParams:
        if m.out is not None:
            if m.out.bits != 8:
                raise EdgeqError(f"layer {node.target} has {m.out.bits}-bit activations, which TFLite cannot express "
                                 "(its int8 kernels saturate to [-128, 127])", "export a plan with 8-bit activations")
            return m.out
        if next(iter(node.users)).op != "output":
            raise EdgeqError(f"layer {node.target} keeps an int32 output inside the graph", "requantize it to int8")
        with torch.no_grad():
            logits = model.dequantize_output(gm(model.quantize_input(calibration)))
        return QParams(float(logits.abs().max()) / 127, 0, 8)

    def fused(q: QParams) -> int:
        return ACT.RELU if q.zero_point == -128 else ACT.NONE   # unsigned storage: the clamp at zp is the ReLU

    def pad(name: str, src: int, q: QParams, shape, ph: int, pw: int, value: int | None = None) -> tuple[int, list[int]]:
        """Explicit NHWC padding; PAD fills with the zero point, PADV2 with `value`."""
        n, h, w, c = shape
        out_shape = [n, h + 2 * ph, w + 2 * pw, c]
        t = b.tensor(f"{name}_pad", out_shape, I8, q)
        paddings = b.constant_i32(f"{name}_paddings", [[0, 0], [ph, ph], [pw, pw], [0, 0]])
        if value is None:
            b.op(fb.BuiltinOperator.PAD, [src, paddings], [t])
        else:
            v = b.tensor(f"{name}_pad_value", [], I8, q, data=np.array(value, np.int8))
            b.op(fb.BuiltinOperator.PADV2, [src, paddings, v], [t])
        return t, out_shape

    inputs, outputs = [], []
    for node in gm.graph.nodes:
        shape = list(node.meta["tensor_meta"].shape) if "tensor_meta" in node.meta else None
        if node.op == "placeholder":
            q = model.input_qparams
            env[node] = (b.tensor(node.name, _nhwc(shape), I8, q), q, shape)
            inputs.append(env[node][0])
        elif node.op == "output":
            outputs.append(env[node.args[0]][0])
        elif node.op == "call_module" and isinstance(mods[node.target], IntConv2d):
            m, (src, qin, in_shape) = mods[node.target], env[node.args[0]]
            q = out_q(node, m)
            w = m.w_i8.to(torch.int64)
            o, _, kh, kw = w.shape
            s_w = (m.acc_scale / qin.scale).numpy()
            bias = (m.bias_i32.to(torch.int64) + qin.zero_point * w.sum((1, 2, 3))).numpy()
            pw, ph = m.pad[0], m.pad[2]
            (sh, sw), (dh, dw) = _pair(m.stride), _pair(m.dilation)
            src_shape = _nhwc(in_shape)
            same = sh == sw == dh == dw == 1 and kh % 2 and kw % 2 and (ph, pw) == ((kh - 1) // 2, (kw - 1) // 2)
            if (ph or pw) and not same:
                src, src_shape = pad(node.target, src, qin, src_shape, ph, pw)
            depthwise = m.groups > 1 and m.groups == in_shape[1] == o
            if m.groups > 1 and not depthwise:
                raise EdgeqError(f"layer {node.target} is a grouped convolution ({m.groups} groups), "
                                 "which TFLite has no int8 kernel for", "use groups=1 or depthwise convolutions")
            weight = w.permute(1, 2, 3, 0) if depthwise else w.permute(0, 2, 3, 1)   # 1HWO or OHWI
            wt = b.tensor(f"{node.target}.weight", weight.shape, I8, data=weight.numpy().astype(np.int8),
                          channel_scales=s_w, channel_axis=3 if depthwise else 0)
            bt = b.tensor(f"{node.target}.bias", [o], fb.TensorType.INT32, data=bias.astype(np.int32),
                          channel_scales=qin.scale * s_w)
            out = b.tensor(node.name, _nhwc(shape), I8, q)
            opts = fb.DepthwiseConv2DOptionsT() if depthwise else fb.Conv2DOptionsT()
            opts.padding = fb.Padding.SAME if same else fb.Padding.VALID
            opts.strideH, opts.strideW, opts.dilationHFactor, opts.dilationWFactor = sh, sw, dh, dw
            opts.fusedActivationFunction = fused(q)
            if depthwise:
                opts.depthMultiplier = 1
                b.op(fb.BuiltinOperator.DEPTHWISE_CONV_2D, [src, wt, bt], [out], opts,
                     fb.BuiltinOptions.DepthwiseConv2DOptions)
            else:
                b.op(fb.BuiltinOperator.CONV_2D, [src, wt, bt], [out], opts, fb.BuiltinOptions.Conv2DOptions)
            env[node] = (out, q, shape)
        elif node.op == "call_module" and isinstance(mods[node.target], IntLinear):
            m, (src, qin, _) = mods[node.target], env[node.args[0]]
            q = out_q(node, m)
            w = m.w_i8.to(torch.int64)
            s_w = (m.acc_scale / qin.scale).numpy()
            bias = (m.bias_i32.to(torch.int64) + qin.zero_point * w.sum(1)).numpy()
            wt = b.tensor(f"{node.target}.weight", w.shape, I8, data=w.numpy().astype(np.int8), channel_scales=s_w)
            bt = b.tensor(f"{node.target}.bias", [w.shape[0]], fb.TensorType.INT32, data=bias.astype(np.int32),
                          channel_scales=qin.scale * s_w)
            out = b.tensor(node.name, shape, I8, q)
            opts = fb.FullyConnectedOptionsT()
            opts.fusedActivationFunction = fused(q)
            b.op(fb.BuiltinOperator.FULLY_CONNECTED, [src, wt, bt], [out], opts, fb.BuiltinOptions.FullyConnectedOptions)
            env[node] = (out, q, shape)
        elif node.op == "call_module" and isinstance(mods[node.target], IntAdd):
            m = mods[node.target]
            q = out_q(node, m)
            out = b.tensor(node.name, _nhwc(shape), I8, q)
            opts = fb.AddOptionsT()
            opts.fusedActivationFunction = fused(q)
            b.op(fb.BuiltinOperator.ADD, [env[a][0] for a in node.args], [out], opts, fb.BuiltinOptions.AddOptions)
            env[node] = (out, q, shape)
        elif node.op == "call_module" and isinstance(mods[node.target], IntGlobalAvgPool):
            m, (src, _, _) = mods[node.target], env[node.args[0]]
            q = out_q(node, m)
            out = b.tensor(node.name, _nhwc(shape), I8, q)
            opts = fb.ReducerOptionsT()
            opts.keepDims = True
            b.op(fb.BuiltinOperator.MEAN, [src, b.constant_i32(f"{node.name}_axes", [1, 2])], [out], opts,
                 fb.BuiltinOptions.ReducerOptions)
            env[node] = (out, q, shape)
        elif node.op == "call_module" and isinstance(mods[node.target], nn.MaxPool2d):
            m, (src, q, in_shape) = mods[node.target], env[node.args[0]]
            (kh, kw), (sh, sw), (ph, pw) = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
            if m.ceil_mode or _pair(m.dilation) != (1, 1):
                raise EdgeqError(f"max pool {node.target} uses ceil_mode or dilation", "use a plain nn.MaxPool2d")
            src_shape = _nhwc(in_shape)
            if ph or pw:   # PyTorch pads a max pool with -inf: the int8 minimum is never the max of a real window
                src, src_shape = pad(node.target, src, q, src_shape, ph, pw, value=-128)
            out = b.tensor(node.name, _nhwc(shape), I8, q)
            opts = fb.Pool2DOptionsT()
            opts.padding, opts.strideH, opts.strideW, opts.filterHeight, opts.filterWidth = \
                fb.Padding.VALID, sh, sw, kh, kw
            b.op(fb.BuiltinOperator.MAX_POOL_2D, [src], [out], opts, fb.BuiltinOptions.Pool2DOptions)
            env[node] = (out, q, shape)
        elif node.op == "call_function" and node.target is torch.flatten:
            src, q, in_shape = env[node.args[0]]
            if len(in_shape) == 4 and in_shape[2] * in_shape[3] > 1:   # NCHW flattening order
                t = b.tensor(f"{node.name}_nchw", in_shape, I8, q)
                b.op(fb.BuiltinOperator.TRANSPOSE, [src, b.constant_i32(f"{node.name}_perm", [0, 3, 1, 2])], [t])
                src = t
            out = b.tensor(node.name, shape, I8, q)
            opts = fb.ReshapeOptionsT()
            opts.newShape = list(shape)
            b.op(fb.BuiltinOperator.RESHAPE, [src, b.constant_i32(f"{node.name}_shape", shape)], [out], opts,
                 fb.BuiltinOptions.ReshapeOptions)
            env[node] = (out, q, shape)
        else:
            what = node.target if node.op != "call_module" else type(mods[node.target]).__name__
            raise EdgeqError(f"the TFLite export has no int8 lowering for {what} ({node.name})",
                             "use conv, linear, add, ReLU, max pool, global average pool and flatten")
    path = Path(path)
    path.write_bytes(b.pack(inputs, outputs, "edgeq int8 export"))
    return path
