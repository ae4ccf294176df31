"""Run an ONNX graph with torch ops, so that the LoRA A/B graph inputs of an imported model can
be trained by autograd on exactly the graph the workers run (no conversion to a torch module).

Covers the operators of torchvision's segmentation exports (LRASPP, DeepLabV3, FCN) and of
common transformer exports (MatMul/Gemm, Softmax, Erf, LayerNormalization, ...). An operator
outside the set raises ImportError_("E_TRAIN_OP", ...) naming it. Frozen weights are buffers;
BatchNormalization runs in inference mode (the exported statistics).
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

from . import ImportError_

_DTYPES = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64}


def _attrs(n: onnx.NodeProto) -> dict:
    out = {}
    for a in n.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        out[a.name] = v
    return out


def _ints(t) -> List[int]:
    return [int(v) for v in (t.tolist() if isinstance(t, torch.Tensor) else t)]


class OnnxTorch:
    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        self.consts: Dict[str, torch.Tensor] = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in self.graph.initializer}
        self.nodes = [(n, _attrs(n)) for n in self.graph.node]
        self.outputs = [o.name for o in self.graph.output]
        for n, _ in self.nodes:
            if not hasattr(self, "_op_" + n.op_type):
                raise ImportError_("E_TRAIN_OP", f"operator {n.op_type} (node {n.name}) is not supported by the LoRA trainer's graph runner")

    def __call__(self, feeds: Dict[str, torch.Tensor], outputs=None) -> Dict[str, torch.Tensor]:
        env: Dict[str, torch.Tensor] = dict(self.consts)
        env.update(feeds)
        env[""] = None
        for n, a in self.nodes:
            ins = [env[i] if i else None for i in n.input]
            res = getattr(self, "_op_" + n.op_type)(ins, a)
            if not isinstance(res, (list, tuple)):
                res = [res]
            for name, v in zip(n.output, res):
                env[name] = v
        return {o: env[o] for o in (outputs or self.outputs)}

    # --- tensor ops -----------------------------------------------------------------------
    def _op_Identity(self, x, a):
        return x[0]

    def _op_Constant(self, x, a):
        if "value" in a:
            return torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        for k, dt in (("value_float", torch.float32), ("value_int", torch.int64)):
            if k in a:
                return torch.tensor(a[k], dtype=dt)
        for k, dt in (("value_floats", torch.float32), ("value_ints", torch.int64)):
            if k in a:
                return torch.tensor(list(a[k]), dtype=dt)
        raise ImportError_("E_TRAIN_OP", "Constant without a supported value attribute")

    def _op_Conv(self, x, a):
        X, W, B = x[0], x[1], x[2] if len(x) > 2 else None
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise ImportError_("E_TRAIN_OP", f"Conv auto_pad={a['auto_pad']} is not supported")
        nd = W.dim() - 2
        pads = list(a.get("pads", [0] * 2 * nd))
        strides = a.get("strides", [1] * nd)
        dil = a.get("dilations", [1] * nd)
        group = a.get("group", 1)
        if pads[:nd] == pads[nd:]:
            pad = pads[:nd]
        else:
            X = F.pad(X, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])])
            pad = [0] * nd
        if W.shape[0] == 0:  # rank 0: an empty output channel dimension
            conv = torch.nn.functional.conv2d if nd == 2 else torch.nn.functional.conv1d
            probe = conv(X[:, :, ...], torch.zeros((1,) + tuple(W.shape[1:]), dtype=X.dtype), None, strides, pad, dil, group)
            return probe[:, :0]
        f = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
        return f(X, W, B, strides, pad, dil, group)

    def _op_Relu(self, x, a):
        return F.relu(x[0])

    def _op_LeakyRelu(self, x, a):
        return F.leaky_relu(x[0], a.get("alpha", 0.01))

    def _op_Sigmoid(self, x, a):
        return torch.sigmoid(x[0])

    def _op_Tanh(self, x, a):
        return torch.tanh(x[0])

    def _op_HardSigmoid(self, x, a):
        return torch.clamp(x[0] * a.get("alpha", 0.2) + a.get("beta", 0.5), 0, 1)

    def _op_HardSwish(self, x, a):
        return F.hardswish(x[0])

    def _op_Erf(self, x, a):
        return torch.erf(x[0])

    def _op_Sqrt(self, x, a):
        return torch.sqrt(x[0])

    def _op_Exp(self, x, a):
        return torch.exp(x[0])

    def _op_Log(self, x, a):
        return torch.log(x[0])

    def _op_Abs(self, x, a):
        return torch.abs(x[0])

    def _op_Neg(self, x, a):
        return -x[0]

    def _op_Reciprocal(self, x, a):
        return 1.0 / x[0]

    def _op_Floor(self, x, a):
        return torch.floor(x[0])

    def _op_Ceil(self, x, a):
        return torch.ceil(x[0])

    def _op_Pow(self, x, a):
        return torch.pow(x[0], x[1])

    def _op_Add(self, x, a):
        return x[0] + x[1]

    def _op_Sub(self, x, a):
        return x[0] - x[1]

    def _op_Mul(self, x, a):
        return x[0] * x[1]

    def _op_Div(self, x, a):
        if not x[0].is_floating_point() and not x[1].is_floating_point():
            return torch.div(x[0], x[1], rounding_mode="trunc")
        return x[0] / x[1]

    def _op_Equal(self, x, a):
        return x[0] == x[1]

    def _op_Where(self, x, a):
        return torch.where(x[0], x[1], x[2])

    def _op_Clip(self, x, a):
        lo = x[1] if len(x) > 1 and x[1] is not None else a.get("min")
        hi = x[2] if len(x) > 2 and x[2] is not None else a.get("max")
        return torch.clamp(x[0], None if lo is None else float(lo), None if hi is None else float(hi))

    def _op_MatMul(self, x, a):
        return torch.matmul(x[0], x[1])

    def _op_Gemm(self, x, a):
        A = x[0].t() if a.get("transA", 0) else x[0]
        B = x[1].t() if a.get("transB", 0) else x[1]
        y = a.get("alpha", 1.0) * (A @ B)
        if len(x) > 2 and x[2] is not None:
            y = y + a.get("beta", 1.0) * x[2]
        return y

    def _op_GlobalAveragePool(self, x, a):
        return x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True)

    def _op_AveragePool(self, x, a):
        k = a["kernel_shape"]
        pads = a.get("pads", [0] * 2 * len(k))
        return F.avg_pool2d(x[0], k, a.get("strides", k), pads[: len(k)], bool(a.get("ceil_mode", 0)), not a.get("count_include_pad", 0) == 0)

    def _op_MaxPool(self, x, a):
        k = a["kernel_shape"]
        pads = a.get("pads", [0] * 2 * len(k))
        return F.max_pool2d(x[0], k, a.get("strides", k), pads[: len(k)], a.get("dilations", [1] * len(k)), bool(a.get("ceil_mode", 0)))

    def _op_BatchNormalization(self, x, a):
        X, s, b, m, v = x[:5]
        shape = (1, -1) + (1,) * (X.dim() - 2)
        return (X - m.view(shape)) / torch.sqrt(v.view(shape) + a.get("epsilon", 1e-5)) * s.view(shape) + b.view(shape)

    def _op_Softmax(self, x, a):
        return torch.softmax(x[0], dim=a.get("axis", -1))

    def _op_LayerNormalization(self, x, a):
        axis = a.get("axis", -1)
        X = x[0]
        shape = X.shape[axis:] if axis >= 0 else X.shape[X.dim() + axis :]
        return F.layer_norm(X, tuple(shape), x[1], x[2] if len(x) > 2 else None, a.get("epsilon", 1e-5))

    def _reduce_axes(self, x, a):
        axes = a.get("axes")
        if axes is None and len(x) > 1 and x[1] is not None:
            axes = _ints(x[1])
        return tuple(axes) if axes is not None else tuple(range(x[0].dim()))

    def _op_ReduceMean(self, x, a):
        return x[0].mean(dim=self._reduce_axes(x, a), keepdim=bool(a.get("keepdims", 1)))

    def _op_ReduceSum(self, x, a):
        return x[0].sum(dim=self._reduce_axes(x, a), keepdim=bool(a.get("keepdims", 1)))

    # --- shape ops ------------------------------------------------------------------------
    def _op_Shape(self, x, a):
        s = torch.tensor(list(x[0].shape), dtype=torch.int64)
        return s[a.get("start", 0) : a.get("end", None)]

    def _op_Cast(self, x, a):
        return x[0].to(_DTYPES.get(a["to"], torch.float32))

    def _op_Gather(self, x, a):
        axis = a.get("axis", 0)
        idx = x[1].long()
        if idx.dim() == 0:
            return torch.select(x[0], axis, int(idx))
        return torch.index_select(x[0], axis, idx.flatten()).reshape(x[0].shape[:axis] + idx.shape + x[0].shape[axis + 1 :])

    def _op_Unsqueeze(self, x, a):
        axes = a.get("axes") if "axes" in a else _ints(x[1])
        y = x[0]
        for ax in sorted(ax % (y.dim() + len(axes)) for ax in axes):
            y = y.unsqueeze(ax)
        return y

    def _op_Squeeze(self, x, a):
        axes = a.get("axes") if "axes" in a else (_ints(x[1]) if len(x) > 1 and x[1] is not None else None)
        if axes is None:
            return x[0].squeeze()
        y = x[0]
        for ax in sorted((ax % y.dim() for ax in axes), reverse=True):
            y = y.squeeze(ax)
        return y

    def _op_Concat(self, x, a):
        return torch.cat([t for t in x if t is not None], dim=a["axis"])

    def _op_Slice(self, x, a):
        data = x[0]
        starts, ends = _ints(x[1]), _ints(x[2])
        axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
        steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
        sl = [slice(None)] * data.dim()
        for s, e, ax, st in zip(starts, ends, axes, steps):
            if st < 0:
                raise ImportError_("E_TRAIN_OP", "Slice with a negative step is not supported")
            n = data.shape[ax]
            s = max(0, min(n, s + n if s < 0 else s))
            e = max(0, min(n, e + n if e < 0 else e))
            sl[ax] = slice(s, e, st)
        return data[tuple(sl)]

    def _op_Reshape(self, x, a):
        shape = _ints(x[1])
        shape = [x[0].shape[i] if v == 0 and not a.get("allowzero", 0) else v for i, v in enumerate(shape)]
        if -1 in shape and x[0].numel() == 0:
            known = int(np.prod([v for v in shape if v != -1]))
            shape = [0 if v == -1 else v for v in shape] if known else shape
        return x[0].reshape(shape)

    def _op_Flatten(self, x, a):
        ax = a.get("axis", 1)
        return x[0].reshape(int(np.prod(x[0].shape[:ax])), -1)

    def _op_Transpose(self, x, a):
        perm = a.get("perm", list(reversed(range(x[0].dim()))))
        return x[0].permute(*perm)

    def _op_Expand(self, x, a):
        shape = _ints(x[1])
        return x[0] * torch.ones(shape, dtype=x[0].dtype) if x[0].is_floating_point() else x[0].expand(torch.broadcast_shapes(x[0].shape, tuple(shape)))

    def _op_ConstantOfShape(self, x, a):
        v = torch.from_numpy(numpy_helper.to_array(a["value"]).copy()) if "value" in a else torch.zeros(1)
        return torch.full(_ints(x[0]), v.item(), dtype=v.dtype)

    def _op_Range(self, x, a):
        return torch.arange(x[0].item(), x[1].item(), x[2].item(), dtype=x[0].dtype)

    def _op_Split(self, x, a):
        axis = a.get("axis", 0)
        split = a.get("split") if "split" in a else (_ints(x[1]) if len(x) > 1 and x[1] is not None else None)
        if split is None:
            n = a.get("num_outputs")
            return torch.chunk(x[0], n, dim=axis) if n else torch.chunk(x[0], 1, dim=axis)
        return torch.split(x[0], split, dim=axis)

    def _op_Resize(self, x, a):
        X = x[0]
        scales = x[2] if len(x) > 2 and x[2] is not None and x[2].numel() > 0 else None
        sizes = x[3] if len(x) > 3 and x[3] is not None and x[3].numel() > 0 else None
        if sizes is not None:
            out = _ints(sizes)[2:]
        elif scales is not None:
            out = [int(np.floor(d * s)) for d, s in zip(X.shape[2:], scales.tolist()[2:])]
        else:
            raise ImportError_("E_TRAIN_OP", "Resize without scales or sizes")
        mode = a.get("mode", "nearest")
        ctm = a.get("coordinate_transformation_mode", "half_pixel")
        if mode == "linear":
            return F.interpolate(X, size=out, mode="bilinear" if X.dim() == 4 else "linear", align_corners=ctm == "align_corners")
        if mode == "nearest":
            return F.interpolate(X, size=out, mode="nearest")
        return F.interpolate(X, size=out, mode="bicubic", align_corners=ctm == "align_corners")

    def _op_Upsample(self, x, a):
        return self._op_Resize([x[0], None, x[1]], a)
