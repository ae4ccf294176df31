"""Graph surgery for `streamseg model import`.

Given a standard ONNX export of a semantic segmentation network (one NCHW float image input,
per-class logits [N, K, h, w] out), builds the graph a streamseg worker feeds:

- every chosen layer gets two graph inputs `<module>.lora_A` [r, in] and `<module>.lora_B`
  [out, r] (r dynamic) and computes y + x·Aᵀ·Bᵀ (scaling folded into B, as the engine feeds):
    Conv (group 1, any kernel): in = C_in·kh·kw; x·Aᵀ is a Conv with A reshaped to
        [r, C_in, kh, kw] (same strides/pads/dilations), then a 1x1 Conv with B as [out, r, 1, 1];
    Gemm (transA = 0, weight an initializer): MatMul(MatMul(x, Aᵀ), Bᵀ) added to Y;
    MatMul (right operand a 2-D initializer [in, out]): the same, over the last axis.
  Zero A/B (or rank 0) add exactly 0, so the base model is the original bit for bit.
- an input `class_embeddings` [C, K]: the output is the 1x1 Conv of the logits with these rows
  (the manifest's class embeddings are one-hot, so a job's class subset selects channels);
- when the logits are not at the input's resolution, a bilinear Resize to it (the engine argmaxes
  at the input size).

The embedder is a second graph cut from the same network: image → [per-channel mean and std of
the image and of one encoder tensor] → log, centred, L2-normalised. No weights are added.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import ImportError_

CLASS_INPUT = "class_embeddings"
OUTPUT_NAME = "logits"


@dataclass
class LoraTarget:
    module: str
    node: str
    op: str
    in_features: int
    out_features: int
    # Conv only: input channels and kernel, to reshape A to [r, C, kh, kw].
    channels: int = 0
    kernel: Tuple[int, int] = (1, 1)

    @property
    def input_a(self) -> str:
        return f"{self.module}.lora_A"

    @property
    def input_b(self) -> str:
        return f"{self.module}.lora_B"

    def manifest(self) -> dict:
        return {"module": self.module, "in": self.in_features, "out": self.out_features, "inputA": self.input_a, "inputB": self.input_b}


@dataclass
class Inspection:
    model: onnx.ModelProto
    input_name: str
    output_name: str
    input_dims: List[Optional[int]]  # [N, C, H, W], None = dynamic
    output_dims: List[Optional[int]]
    opset: int
    inits: Dict[str, onnx.TensorProto] = field(default_factory=dict)


def _dims(value_info) -> List[Optional[int]]:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]


def load_and_inspect(path: str) -> Inspection:
    """Loads and checks that `path` is an NCHW image → per-class logits network."""
    try:
        model = onnx.load(path)
    except FileNotFoundError:
        raise ImportError_("E_IMPORT_FILE", f"{path}: no such file")
    except Exception as e:  # protobuf DecodeError and friends
        raise ImportError_("E_IMPORT_CORRUPT", f"{path} is not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'parse failed'})")
    g = model.graph
    if len(g.node) == 0:
        raise ImportError_("E_IMPORT_CORRUPT", f"{path} holds no graph nodes (not an ONNX model, or an empty one)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ImportError_("E_IMPORT_CORRUPT", f"{path} fails the ONNX checker: {str(e).splitlines()[0]}")
    inits = {i.name: i for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        if any(n.endswith(".lora_A") for n in names) and "class_embeddings" in names:
            raise ImportError_("E_IMPORT_NOT_SEGMENTATION", f"{path} is already a streamseg import (LoRA and class_embeddings inputs); import the original export, or use its package directory with --model")
        listed = ", ".join(names[:6]) + (f", … ({len(names) - 6} more)" if len(names) > 6 else "")
        raise ImportError_("E_IMPORT_NOT_SEGMENTATION", f"{path} has {len(inputs)} graph inputs ({listed}); streamseg imports networks with one image input")
    inp = inputs[0]
    if inp.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ImportError_("E_IMPORT_LAYOUT", f"input \"{inp.name}\" is {TensorProto.DataType.Name(inp.type.tensor_type.elem_type)}, expected float32 NCHW")
    idims = _dims(inp)
    if len(idims) != 4:
        raise ImportError_("E_IMPORT_LAYOUT", f"input \"{inp.name}\" has rank {len(idims)}, expected 4 (NCHW image)")
    if idims[1] != 3:
        hint = " (it looks NHWC: export with the channels second)" if idims[3] == 3 else ""
        raise ImportError_("E_IMPORT_LAYOUT", f"input \"{inp.name}\" has dims {_fmt(idims)}: expected [N, 3, H, W]{hint}")
    if len(g.output) < 1:
        raise ImportError_("E_IMPORT_NOT_SEGMENTATION", f"{path} has no graph output")
    out = g.output[0]
    odims = _dims(out)
    if odims and len(odims) != 4:
        raise ImportError_("E_IMPORT_NOT_SEGMENTATION", f"output \"{out.name}\" has rank {len(odims)} {_fmt(odims)}: a segmentation network outputs per-class logits [N, K, H, W]")
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 11:
        raise ImportError_("E_IMPORT_OPSET", f"{path} uses opset {opset}; export with opset_version >= 11 (13 recommended)")
    return Inspection(model, inp.name, out.name, idims, odims, opset, inits)


def _fmt(d) -> str:
    return "[" + ", ".join("?" if v is None else str(v) for v in d) + "]"


def module_name(node: onnx.NodeProto, weight: str, index: int) -> str:
    """A PEFT-style dotted module name: torch scope paths (/net/backbone/backbone.2/block/block.0/Conv)
    become net.backbone.2.block.0; otherwise the weight's name without `.weight`; else op_index."""
    name = node.name or ""
    if name.startswith("/") and name.count("/") >= 2:
        segs = [s for s in name.strip("/").split("/")[:-1] if s]
        out: List[str] = []
        prev = None
        for s in segs:
            if prev is not None and s.startswith(prev + "."):
                out.append(s[len(prev) + 1 :])
            else:
                out.append(s)
            prev = s
        cand = ".".join(out)
    elif weight and not weight.startswith("onnx::") and weight.endswith(".weight"):
        cand = weight[: -len(".weight")]
    else:
        cand = name or f"{node.op_type.lower()}_{index}"
    cand = re.sub(r"[^A-Za-z0-9_.]", "_", cand).strip("._") or f"{node.op_type.lower()}_{index}"
    return cand


def find_targets(ins: Inspection, pattern: Optional[str] = None, kernels: str = "all") -> Tuple[List[LoraTarget], List[str]]:
    """Eligible layers (a weight initializer, group 1), filtered by a regex on module names.
    Returns the targets and a list of skipped layers with the reason."""
    g = ins.model.graph
    rx = re.compile(pattern) if pattern else None
    targets: List[LoraTarget] = []
    skipped: List[str] = []
    used: Dict[str, int] = {}
    for i, n in enumerate(g.node):
        if n.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        w = n.input[1] if len(n.input) > 1 else ""
        if w not in ins.inits:
            if n.op_type == "MatMul" and n.input[0] in ins.inits:
                skipped.append(f"{n.name}: weight on the left")
            elif n.op_type != "MatMul":
                skipped.append(f"{n.name}: weight is not a constant")
            continue
        wd = list(ins.inits[w].dims)
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Conv":
            if len(wd) != 4:
                skipped.append(f"{n.name}: {len(wd) - 2}-D conv")
                continue
            if attrs.get("group", 1) != 1:
                skipped.append(f"{n.name}: grouped/depthwise conv (group {attrs.get('group')})")
                continue
            if kernels == "1x1" and (wd[2], wd[3]) != (1, 1):
                continue
            t = LoraTarget("", n.name, "Conv", wd[1] * wd[2] * wd[3], wd[0], channels=wd[1], kernel=(wd[2], wd[3]))
        elif n.op_type == "Gemm":
            if attrs.get("transA", 0) != 0 or len(wd) != 2:
                skipped.append(f"{n.name}: transA Gemm")
                continue
            out_f, in_f = (wd[0], wd[1]) if attrs.get("transB", 0) else (wd[1], wd[0])
            t = LoraTarget("", n.name, "Gemm", in_f, out_f)
        else:
            if len(wd) != 2:
                skipped.append(f"{n.name}: batched MatMul weight")
                continue
            t = LoraTarget("", n.name, "MatMul", wd[0], wd[1])
        name = module_name(n, w, i)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        t.module = name
        if rx and not (rx.search(name) or rx.search(n.name)):
            continue
        targets.append(t)
    return targets, skipped


def _const(name: str, values, dtype=np.int64) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(np.asarray(values, dtype=dtype), name=name))


def build_imported(ins: Inspection, targets: List[LoraTarget], num_classes: int, resize_to_input: bool) -> onnx.ModelProto:
    """The worker's graph: LoRA inputs on `targets`, class selection, output `logits`."""
    model = copy.deepcopy(ins.model)
    g = model.graph
    by_name = {t.node: t for t in targets}
    new_nodes: List[onnx.NodeProto] = []
    new_inputs: List[onnx.ValueInfoProto] = []
    for n in g.node:
        t = by_name.get(n.name)
        if t is None:
            new_nodes.append(n)
            continue
        p = t.module
        y = n.output[0]
        base = f"{p}.base_out"
        n.output[0] = base
        new_nodes.append(n)
        x = n.input[0]
        new_inputs.append(helper.make_tensor_value_info(t.input_a, TensorProto.FLOAT, ["r_" + p, t.in_features]))
        new_inputs.append(helper.make_tensor_value_info(t.input_b, TensorProto.FLOAT, [t.out_features, "r_" + p]))
        if t.op == "Conv":
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute if a.name in ("strides", "pads", "dilations", "auto_pad", "kernel_shape")}
            # A [r, C·kh·kw] → [r, C, kh, kw]; the rank comes from A's shape so r = 0 stays valid.
            new_nodes += [
                helper.make_node("Shape", [t.input_a], [f"{p}.lora_A_shape"], name=f"{p}.lora/ShapeA"),
                helper.make_node("Slice", [f"{p}.lora_A_shape", f"{p}.lora/c0", f"{p}.lora/c1"], [f"{p}.lora_r"], name=f"{p}.lora/SliceR"),
                _const(f"{p}.lora/c0", [0]),
                _const(f"{p}.lora/c1", [1]),
                _const(f"{p}.lora/ckk", [t.channels, t.kernel[0], t.kernel[1]]),
                _const(f"{p}.lora/c11", [1, 1]),
                helper.make_node("Concat", [f"{p}.lora_r", f"{p}.lora/ckk"], [f"{p}.lora_A_kshape"], name=f"{p}.lora/ConcatA", axis=0),
                helper.make_node("Reshape", [t.input_a, f"{p}.lora_A_kshape"], [f"{p}.lora_A_k"], name=f"{p}.lora/ReshapeA"),
                _const(f"{p}.lora/cout", [t.out_features]),
                helper.make_node("Concat", [f"{p}.lora/cout", f"{p}.lora_r", f"{p}.lora/c11"], [f"{p}.lora_B_kshape"], name=f"{p}.lora/ConcatB", axis=0),
                helper.make_node("Reshape", [t.input_b, f"{p}.lora_B_kshape"], [f"{p}.lora_B_k"], name=f"{p}.lora/ReshapeB"),
                helper.make_node("Conv", [x, f"{p}.lora_A_k"], [f"{p}.lora_down"], name=f"{p}.lora/ConvA", **attrs),
                helper.make_node("Conv", [f"{p}.lora_down", f"{p}.lora_B_k"], [f"{p}.lora_delta"], name=f"{p}.lora/ConvB"),
            ]
        else:
            new_nodes += [
                helper.make_node("Transpose", [t.input_a], [f"{p}.lora_At"], name=f"{p}.lora/TransposeA", perm=[1, 0]),
                helper.make_node("Transpose", [t.input_b], [f"{p}.lora_Bt"], name=f"{p}.lora/TransposeB", perm=[1, 0]),
                helper.make_node("MatMul", [x, f"{p}.lora_At"], [f"{p}.lora_down"], name=f"{p}.lora/MatMulA"),
                helper.make_node("MatMul", [f"{p}.lora_down", f"{p}.lora_Bt"], [f"{p}.lora_delta"], name=f"{p}.lora/MatMulB"),
            ]
        new_nodes.append(helper.make_node("Add", [base, f"{p}.lora_delta"], [y], name=f"{p}.lora/Add"))

    # Class selection: out[n, c] = Σ_k E[c, k] · logits[n, k] (a 1x1 Conv with E as its weight).
    full = ins.output_name
    if full == OUTPUT_NAME:
        renamed = "logits_all_classes"
        for n in new_nodes:
            for i, o in enumerate(n.output):
                if o == full:
                    n.output[i] = renamed
        full = renamed
    if resize_to_input:
        new_nodes += [
            helper.make_node("Shape", [ins.input_name], ["streamseg/in_shape"], name="streamseg/ShapeIn"),
            helper.make_node("Shape", [full], ["streamseg/out_shape"], name="streamseg/ShapeOut"),
            _const("streamseg/s0", [0]), _const("streamseg/s2", [2]), _const("streamseg/s4", [4]),
            helper.make_node("Slice", ["streamseg/out_shape", "streamseg/s0", "streamseg/s2"], ["streamseg/nk"], name="streamseg/SliceNK"),
            helper.make_node("Slice", ["streamseg/in_shape", "streamseg/s2", "streamseg/s4"], ["streamseg/hw"], name="streamseg/SliceHW"),
            helper.make_node("Concat", ["streamseg/nk", "streamseg/hw"], ["streamseg/sizes"], name="streamseg/ConcatSizes", axis=0),
            helper.make_node("Resize", [full, "", "", "streamseg/sizes"], ["streamseg/resized"], name="streamseg/Resize",
                             mode="linear", coordinate_transformation_mode="half_pixel"),
        ]
        full = "streamseg/resized"
    new_nodes += [
        helper.make_node("Unsqueeze", [CLASS_INPUT, "streamseg/axes23"], ["streamseg/class_w"], name="streamseg/ClassWeight"),
        _const("streamseg/axes23", [2, 3]),
        helper.make_node("Conv", [full, "streamseg/class_w"], [OUTPUT_NAME], name="streamseg/SelectClasses"),
    ]
    # Unsqueeze takes axes as an input from opset 13, as an attribute before.
    if ins.opset < 13:
        new_nodes = [n for n in new_nodes if n.name != "streamseg/axes23"]
        for n in new_nodes:
            if n.name == "streamseg/ClassWeight":
                del n.input[1:]
                n.attribute.extend([helper.make_attribute("axes", [2, 3])])
    del g.node[:]
    g.node.extend(_toposort(new_nodes, {i.name for i in g.input} | set(ins.inits) | {t.input_a for t in targets} | {t.input_b for t in targets} | {CLASS_INPUT}))
    g.input.extend(new_inputs)
    g.input.extend([helper.make_tensor_value_info(CLASS_INPUT, TensorProto.FLOAT, ["classes", num_classes])])
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", "classes", "height", "width"])])
    # Stale shape annotations of renamed tensors would mislead ORT; drop them all.
    del g.value_info[:]
    return model


def _toposort(nodes: List[onnx.NodeProto], available: set) -> List[onnx.NodeProto]:
    have = set(available) | {""}
    out: List[onnx.NodeProto] = []
    pending = list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(i in have for i in n.input):
                out.append(n)
                have.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            missing = sorted({i for n in rest for i in n.input if i not in have})[:5]
            raise ImportError_("E_IMPORT_GRAPH", f"graph has nodes whose inputs are never produced: {', '.join(missing)}")
        pending = rest
    return out


def pick_embed_tensor(ins: Inspection, targets_hint: Optional[str] = None) -> Tuple[str, int]:
    """An early encoder tensor for style statistics: the output of the activation/Add after the
    Conv at about a quarter of the graph's Convs whose output has ≤ 64 channels. Returns (tensor, channels)."""
    g = ins.model.graph
    conv_out_ch: Dict[str, int] = {}
    convs = []
    # Tensors without spatial extent (squeeze-excitation branches after a global pool): their std is 0.
    pooled = set()
    for n in g.node:
        data_in = [i for i in n.input if i and i not in ins.inits]
        if n.op_type in ("GlobalAveragePool", "GlobalMaxPool") or (n.op_type == "ReduceMean" and data_in) or (data_in and all(i in pooled for i in data_in)):
            pooled.update(n.output)
            continue
        if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in ins.inits:
            conv_out_ch[n.output[0]] = int(ins.inits[n.input[1]].dims[0])
            convs.append(n)
    if targets_hint:
        for n in g.node:
            if targets_hint in n.output or n.name == targets_hint:
                ch = conv_out_ch.get(n.output[0])
                if ch is None:
                    raise ImportError_("E_IMPORT_EMBEDDER", f"--embed-tensor {targets_hint}: not a Conv output with a known channel count")
                return n.output[0], ch
        raise ImportError_("E_IMPORT_EMBEDDER", f"--embed-tensor {targets_hint}: no such node or tensor")
    if not convs:
        raise ImportError_("E_IMPORT_EMBEDDER", "no Conv layer with constant weights to take embedder features from; give --embed-tensor")
    small = [n for n in convs if conv_out_ch[n.output[0]] <= 64] or convs
    pick = small[min(len(small) - 1, max(1, len(convs) // 4) if len(small) > len(convs) // 4 else len(small) // 2)]
    return pick.output[0], conv_out_ch[pick.output[0]]


def build_embedder(ins: Inspection, tensor: str, channels: int) -> Tuple[onnx.ModelProto, int]:
    """image → L2-normalised, centred log-statistics (mean, std per channel) of the image and of
    `tensor`. Returns the model and the embedding size (6 + 2·channels)."""
    g = ins.model.graph
    producers = {o: n for n in g.node for o in n.output}
    need: List[onnx.NodeProto] = []
    seen = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        n = producers.get(t)
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        need.append(n)
        stack.extend(i for i in n.input if i)
    order = {id(n): i for i, n in enumerate(g.node)}
    need.sort(key=lambda n: order[id(n)])
    used = {i for n in need for i in n.input}
    inits = [copy.deepcopy(i) for i in g.initializer if i.name in used]
    nodes = [copy.deepcopy(n) for n in need]

    def stats(x: str, tag: str) -> List[onnx.NodeProto]:
        # mean over H, W; std = sqrt(mean((x - mean)^2) + eps); both → log(|.| + 1e-3)
        return [
            helper.make_node("ReduceMean", [x], [f"e/{tag}/m4"], name=f"e/{tag}/Mean", axes=[2, 3], keepdims=1),
            helper.make_node("Sub", [x, f"e/{tag}/m4"], [f"e/{tag}/d"], name=f"e/{tag}/Sub"),
            helper.make_node("Mul", [f"e/{tag}/d", f"e/{tag}/d"], [f"e/{tag}/d2"], name=f"e/{tag}/Sq"),
            helper.make_node("ReduceMean", [f"e/{tag}/d2"], [f"e/{tag}/v"], name=f"e/{tag}/Var", axes=[2, 3], keepdims=0),
            helper.make_node("Add", [f"e/{tag}/v", "e/eps"], [f"e/{tag}/ve"], name=f"e/{tag}/AddEps"),
            helper.make_node("Sqrt", [f"e/{tag}/ve"], [f"e/{tag}/s"], name=f"e/{tag}/Std"),
            helper.make_node("ReduceMean", [x], [f"e/{tag}/m"], name=f"e/{tag}/Mean2", axes=[2, 3], keepdims=0),
            helper.make_node("Abs", [f"e/{tag}/m"], [f"e/{tag}/ma"], name=f"e/{tag}/Abs"),
            helper.make_node("Add", [f"e/{tag}/ma", "e/floor"], [f"e/{tag}/mf"], name=f"e/{tag}/AddFloorM"),
            helper.make_node("Add", [f"e/{tag}/s", "e/floor"], [f"e/{tag}/sf"], name=f"e/{tag}/AddFloorS"),
            helper.make_node("Log", [f"e/{tag}/mf"], [f"e/{tag}/lm"], name=f"e/{tag}/LogM"),
            helper.make_node("Log", [f"e/{tag}/sf"], [f"e/{tag}/ls"], name=f"e/{tag}/LogS"),
        ]

    nodes += [
        helper.make_node("Constant", [], ["e/eps"], name="e/eps", value=numpy_helper.from_array(np.array(1e-6, np.float32))),
        helper.make_node("Constant", [], ["e/floor"], name="e/floor", value=numpy_helper.from_array(np.array(1e-3, np.float32))),
    ]
    nodes += stats(ins.input_name, "img") + stats(tensor, "feat")
    nodes += [
        helper.make_node("Concat", ["e/img/lm", "e/img/ls", "e/feat/lm", "e/feat/ls"], ["e/raw"], name="e/Concat", axis=1),
        helper.make_node("ReduceMean", ["e/raw"], ["e/rawm"], name="e/Centre", axes=[1], keepdims=1),
        helper.make_node("Sub", ["e/raw", "e/rawm"], ["e/c"], name="e/SubCentre"),
        helper.make_node("Mul", ["e/c", "e/c"], ["e/c2"], name="e/Sq"),
        helper.make_node("ReduceSum", ["e/c2", "e/ax1"], ["e/n2"], name="e/Norm2", keepdims=1),
        helper.make_node("Constant", [], ["e/ax1"], name="e/ax1", value=numpy_helper.from_array(np.array([1], np.int64))),
        helper.make_node("Add", ["e/n2", "e/eps"], ["e/n2e"], name="e/AddEpsN"),
        helper.make_node("Sqrt", ["e/n2e"], ["e/n"], name="e/Norm"),
        helper.make_node("Div", ["e/c", "e/n"], ["embedding"], name="e/Normalise"),
    ]
    if ins.opset < 13:  # ReduceSum takes axes as an attribute before opset 13
        for n in nodes:
            if n.name == "e/Norm2":
                del n.input[1:]
                n.attribute.extend([helper.make_attribute("axes", [1])])
        nodes = [n for n in nodes if n.name != "e/ax1"]
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    for n in nodes:
        for i, name in enumerate(n.input):
            if name == ins.input_name:
                n.input[i] = "image"
    size = 6 + 2 * channels
    graph = helper.make_graph(
        _toposort(nodes, {"image"} | {i.name for i in inits}), "streamseg_embedder", [inp],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", size])], inits,
    )
    model = helper.make_model(graph, opset_imports=list(ins.model.opset_import), producer_name="streamseg model import")
    model.ir_version = ins.model.ir_version
    return model, size
