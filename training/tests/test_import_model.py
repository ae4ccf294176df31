"""`streamseg model import` graph surgery (training/import_model.py, streamseg_import/):
rank-0 / zero LoRA parity with the original, a random LoRA equal to the dense ΔW = B·A folded
into the weights, ORT running the graph, the torch graph runner agreeing with ORT, and one-line
errors for bad models, and ORT against the torchvision module itself with a PEFT adapter fed
(LRASPP and DeepLabV3). The zero/rank-0 parity bound is 1e-5 · max(1, max|logit|): DeepLabV3
at 640x352 (logits near 10) passes, a graph whose rank-0 output really differs fails. Real
torchvision LRASPP/DeepLabV3 (random weights) plus a tiny net with MatMul and Gemm layers;
small inputs except the one 640x352 import, one thread."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import import_model  # noqa: E402
from streamseg_train.ort import ort_run  # noqa: E402

CLASSES8 = "sky,road,sidewalk,building,vegetation,vehicle,person,pole"


class TinyMixer(nn.Module):
    """Conv 3x3 → per-pixel Linear (MatMul) → squeeze-excitation with a Linear on the pooled
    vector (Gemm) → 1x1 Conv to K logits at the input resolution."""

    def __init__(self, k: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.mix = nn.Linear(8, 8)
        self.se = nn.Linear(8, 8)
        self.head = nn.Conv2d(8, k, 1)

    def forward(self, x):
        f = torch.relu(self.stem(x))
        f = self.mix(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        g = torch.sigmoid(self.se(f.mean(dim=(2, 3))))
        return self.head(f * g[:, :, None, None])


def export(model: nn.Module, path: str, size=(64, 96), dynamic=True, layout="nchw"):
    model.eval()
    x = torch.randn(1, 3, *size) if layout == "nchw" else torch.randn(1, *size, 3)
    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}} if dynamic else None
    with torch.no_grad(), warnings.catch_warnings():
        # torch 1.13's exporter says this for torchvision's LRASPP (constants it does not type);
        # the import checks the export. A passing run shows no alarming lines. (Here, not at
        # module level: unittest resets the filters for each test.)
        warnings.filterwarnings("ignore", message="The shape inference of prim::Constant type is missing")
        torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"], dynamic_axes=axes, opset_version=13, do_constant_folding=True)


class Logits(nn.Module):
    """torchvision's segmentation models return a dict; the export wants the logits tensor."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def calibrated(fn, seed: int, batches: int = 2) -> nn.Module:
    """A torchvision segmentation net with random weights and BatchNorm statistics recalibrated
    on random images (as bench/export_torchvision.py does): with torchvision's init alone the
    activations vanish (~1e-8) and the logits do not depend on the image."""
    torch.manual_seed(seed)
    model = Logits(fn(weights=None, weights_backbone=None, num_classes=8))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(4, 3, 64, 96))
    return model.eval()


def run_import(args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = import_model.main(args)
    return code, err.getvalue()


def lora_feeds(targets, r, seed, scale):
    g = np.random.default_rng(seed)
    f = {}
    for t in targets:
        f[t.input_a] = (g.standard_normal((r, t.in_features)) / np.sqrt(t.in_features)).astype(np.float32)
        f[t.input_b] = (g.standard_normal((t.out_features, r)) * scale).astype(np.float32)
    return f


class ImportModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        torch.manual_seed(0)
        cls.tmp = tempfile.TemporaryDirectory(prefix="ss_import_")
        cls.dir = cls.tmp.name
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        class Out(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=8)

            def forward(self, x):
                return self.net(x)["out"]

        cls.lraspp = os.path.join(cls.dir, "lraspp.onnx")
        export(Out(), cls.lraspp)
        cls.tiny = os.path.join(cls.dir, "tiny.onnx")
        export(TinyMixer(3), cls.tiny)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_parity(self, src, classes, out, extra=()):
        import onnx

        from streamseg_import.surgery import find_targets, load_and_inspect

        code, err = run_import([src, "--classes", classes, "--out", out, "--fit-pixels", "6144", *extra])
        self.assertEqual(code, 0, err)
        manifest = json.load(open(os.path.join(out, "model.json")))
        report = json.load(open(os.path.join(out, "import-report.json")))
        self.assertEqual(report["parity"]["zeroLoraMaxAbs"], 0.0)
        self.assertLessEqual(report["parity"]["rank0MaxAbs"], 1e-5)
        ins = load_and_inspect(src)
        targets, _ = find_targets(ins)
        self.assertEqual([t.module for t in targets], [t["module"] for t in manifest["lora"]["targets"]])
        graph = onnx.load(os.path.join(out, "model.onnx"))
        names = {i.name for i in graph.graph.input}
        for t in targets:
            self.assertIn(t.input_a, names)
            self.assertIn(t.input_b, names)
        w, h = manifest["input"]["width"], manifest["input"]["height"]
        k = manifest["classEmbeddings"]["dim"]
        image = np.random.default_rng(5).standard_normal((2, 3, h, w)).astype(np.float32)
        base = ort_run(src, {"input": image}, threads=1)["logits"]
        eye = np.eye(k, dtype=np.float32)
        feeds = lora_feeds(targets, 3, seed=9, scale=0.5)
        got = ort_run(os.path.join(out, "model.onnx"), {"input": image, "class_embeddings": eye, **feeds}, threads=1)["logits"]
        dense_path = os.path.join(out, "dense.onnx")
        onnx.save(import_model.dense_reference(ins.model, targets, feeds), dense_path)
        dense = ort_run(dense_path, {"input": image}, threads=1)["logits"]
        change = np.abs(got - base).max()
        self.assertGreater(change, 1e-3 * max(1.0, np.abs(base).max()), "the random LoRA should move the logits")
        self.assertLess(np.abs(got - dense).max(), 1e-4 * max(1.0, np.abs(dense).max()))
        # A class subset selects channels (the engine feeds the job's classes' one-hot rows).
        sub = ort_run(os.path.join(out, "model.onnx"), {"input": image, "class_embeddings": eye[[2, 0]], **feeds}, threads=1)["logits"]
        np.testing.assert_array_equal(sub, got[:, [2, 0]])
        return manifest, targets, feeds, image, got

    def test_lraspp_parity_and_torch_runner(self):
        import onnx

        from streamseg_import.torch_onnx import OnnxTorch

        out = os.path.join(self.dir, "pkg_lraspp")
        manifest, targets, feeds, image, got = self.check_parity(self.lraspp, CLASSES8, out)
        self.assertEqual(manifest["input"]["fit"], {"pixels": 6144, "stride": 32, "maxSide": 1024})
        self.assertGreater(len(targets), 40)
        self.assertTrue(any(t.kernel == (3, 3) for t in targets), "kxk convs get LoRA too")
        runner = OnnxTorch(onnx.load(os.path.join(out, "model.onnx")))
        with torch.no_grad():
            y = runner({"input": torch.from_numpy(image), "class_embeddings": torch.eye(8), **{k: torch.from_numpy(v) for k, v in feeds.items()}})["logits"]
        self.assertLess(float(np.abs(y.numpy() - got).max()), 1e-4)
        emb = ort_run(os.path.join(out, "embedder.onnx"), {"image": image}, threads=1)["embedding"]
        self.assertEqual(emb.shape, (2, manifest["embedder"]["size"]))
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

    def test_ort_matches_torchvision_module_with_adapter_fed(self):
        """ORT against torch with an adapter fed (issue 13, point 3), for LRASPP and DeepLabV3.

        Torch side: the torchvision nn.Module itself (not the imported graph), with each LoRA
        added where the imported graph adds it. torch.onnx.export folds eval-mode BatchNorm into
        the conv before it, so the graph's `y + x·Aᵀ·Bᵀ` is taken after that BatchNorm (the
        conv's own output when no BatchNorm follows). ORT side: the imported model.onnx fed the
        same PEFT-layout adapter the way the worker feeds one (lora_A [r, C, kh, kw] read as
        [r, C·kh·kw], scaling lora_alpha / r folded into B). The module names in model.json must
        be the torch module paths. BatchNorm statistics are recalibrated before export, so the
        activations do not vanish (with torchvision's random init they are ~1e-8 and no LoRA
        moves DeepLabV3's logits) and BatchNorm is far from the identity (a LoRA applied on the
        wrong side of it would not match)."""
        from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large, lraspp_mobilenet_v3_large

        for arch, fn in (("lraspp", lraspp_mobilenet_v3_large), ("deeplabv3", deeplabv3_mobilenet_v3_large)):
            with self.subTest(arch=arch):
                model = calibrated(fn, seed=1)
                src = os.path.join(self.dir, f"{arch}_calibrated.onnx")
                export(model, src)
                out = os.path.join(self.dir, f"pkg_{arch}_torch")
                code, err = run_import([src, "--classes", CLASSES8, "--out", out, "--fit-pixels", "6144"])
                self.assertEqual(code, 0, err)
                manifest = json.load(open(os.path.join(out, "model.json")))
                modules = dict(model.named_modules())
                targets = manifest["lora"]["targets"]
                self.assertGreater(len(targets), 40)

                # A random PEFT-layout adapter (rank 4, lora_alpha 8: scaling 2) on every target.
                rank, alpha = 4, 8.0
                g = np.random.default_rng(3)
                peft = {}
                for t in targets:
                    conv = modules.get(t["module"])
                    self.assertIsInstance(conv, nn.Conv2d, f"{t['module']} is not a torch Conv2d module path")
                    c, (kh, kw) = conv.in_channels, conv.kernel_size
                    self.assertEqual(t["in"], c * kh * kw)
                    self.assertEqual(t["out"], conv.out_channels)
                    key = f"base_model.model.{t['module']}"
                    peft[f"{key}.lora_A.weight"] = (g.standard_normal((rank, c, kh, kw)) / np.sqrt(t["in"])).astype(np.float32)
                    peft[f"{key}.lora_B.weight"] = (g.standard_normal((t["out"], rank, 1, 1)) * 0.01).astype(np.float32)
                scaling = alpha / rank

                # Torch: the module with the LoRA hooked in after the BatchNorm the export folds.
                hooks, pending, bn_scale, deltas = [], {}, {}, []
                for t in targets:
                    name = t["module"]
                    conv = modules[name]
                    A = torch.from_numpy(peft[f"base_model.model.{name}.lora_A.weight"])
                    B = torch.from_numpy(peft[f"base_model.model.{name}.lora_B.weight"])

                    def delta(x, conv=conv, A=A, B=B):
                        h = nn.functional.conv2d(x, A, stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
                        return nn.functional.conv2d(h, B) * scaling

                    deltas.append(delta)
                    parent_name, _, index = name.rpartition(".")
                    parent = modules.get(parent_name)
                    after = parent[int(index) + 1] if isinstance(parent, nn.Sequential) and index.isdigit() and int(index) + 1 < len(parent) else None
                    if isinstance(after, nn.BatchNorm2d):
                        bn_scale[name] = (after.weight / torch.sqrt(after.running_var + after.eps)).detach().numpy()
                        hooks.append(conv.register_forward_hook(lambda mod, inp, out, name=name, delta=delta: pending.__setitem__(name, delta(inp[0]))))
                        hooks.append(after.register_forward_hook(lambda mod, inp, out, name=name: out + pending.pop(name)))
                    else:
                        hooks.append(conv.register_forward_hook(lambda mod, inp, out, delta=delta: out + delta(inp[0])))
                image = torch.from_numpy(np.random.default_rng(4).standard_normal((2, 3, 64, 96)).astype(np.float32))
                with torch.no_grad():
                    adapted_torch = model(image).numpy()
                    for h in hooks:
                        h.remove()
                    base_torch = model(image).numpy()
                    # PEFT's place on the torch module: the LoRA added to the conv's own output,
                    # before the BatchNorm that follows it (docs/BRING-YOUR-OWN-MODEL.md, Limits).
                    hooks = [modules[t["module"]].register_forward_hook(lambda mod, inp, out, d=d: out + d(inp[0])) for t, d in zip(targets, deltas)]
                    peft_torch = model(image).numpy()
                    for h in hooks:
                        h.remove()
                self.assertEqual(pending, {})

                # ORT: the imported graph fed the adapter as the worker feeds it.
                feeds = {"input": image.numpy(), "class_embeddings": np.eye(8, dtype=np.float32)}
                for t in targets:
                    key = f"base_model.model.{t['module']}"
                    feeds[t["inputA"]] = peft[f"{key}.lora_A.weight"].reshape(rank, t["in"])
                    feeds[t["inputB"]] = peft[f"{key}.lora_B.weight"].reshape(t["out"], rank) * np.float32(scaling)
                adapted_ort = ort_run(os.path.join(out, "model.onnx"), feeds, threads=1)["logits"]
                scale = max(1.0, float(np.abs(adapted_torch).max()))
                moved = float(np.abs(adapted_torch - base_torch).max())
                self.assertGreater(moved, 0.05 * scale, f"{arch}: the adapter should move the logits (moved {moved:.3g})")
                diff = float(np.abs(adapted_ort - adapted_torch).max())
                self.assertLess(diff, 1e-4 * scale, f"{arch}: ORT vs torch with the adapter fed differ by {diff:.3g} (adapter moves logits by {moved:.3g})")

                # An adapter trained with PEFT on the torch module (LoRA before the BatchNorm)
                # does not drop in as is; scaling each lora_B row (output channel) by the
                # following BatchNorm's weight / sqrt(running_var + eps) makes it exact.
                peft_scale = max(1.0, float(np.abs(peft_torch).max()))
                as_is = float(np.abs(adapted_ort - peft_torch).max())
                self.assertGreater(as_is, 0.05 * peft_scale, f"{arch}: a PEFT adapter fed as is should differ from PEFT on torch (differs by {as_is:.3g})")
                for t in targets:
                    if t["module"] in bn_scale:
                        feeds[t["inputB"]] = feeds[t["inputB"]] * bn_scale[t["module"]][:, None].astype(np.float32)
                converted = ort_run(os.path.join(out, "model.onnx"), feeds, threads=1)["logits"]
                diff = float(np.abs(converted - peft_torch).max())
                self.assertLess(diff, 1e-4 * peft_scale, f"{arch}: a PEFT adapter with lora_B scaled by its BatchNorm differs from PEFT on torch by {diff:.3g}")

    def test_parity_bound_is_relative_to_the_logits(self):
        """The zero/rank-0 bound is 1e-5 · max(1, max|logit|): float32 rounding (a few ulps of
        each logit) passes at any logit scale, a real difference fails with one line."""
        ref = np.clip(np.random.default_rng(0).standard_normal((2, 8, 16, 24)) * 4.0, -9.0, 9.0).astype(np.float32)
        ref[0, 0, 0, 0] = 10.0
        bound, peak = import_model.parity_bound(ref)
        self.assertEqual(peak, 10.0)
        self.assertAlmostEqual(bound, 1e-4)
        # Three ulps on every logit: 2.9e-6 at 10, over the old absolute 1e-5 once logits pass 32.
        rounded = ref.copy()
        for _ in range(3):
            rounded = np.nextafter(rounded, np.float32(np.inf))
        import_model.check_parity("zero", float(np.abs(rounded - ref).max()), bound, peak)
        big = ref * 100  # logits near 1000: the same three ulps are 1.8e-4 absolute
        rounded_big = big.copy()
        for _ in range(3):
            rounded_big = np.nextafter(rounded_big, np.float32(np.inf))
        diff_big = float(np.abs(rounded_big - big).max())
        self.assertGreater(diff_big, 1e-5)
        import_model.check_parity("zero", diff_big, *import_model.parity_bound(big))
        # Logits of magnitude ≤ 1 keep the absolute 1e-5.
        self.assertEqual(import_model.parity_bound(ref / 20)[0], 1e-5)
        for diff in (2e-4, float("nan")):
            with self.assertRaises(import_model.ImportError_) as cm:
                import_model.check_parity("rank-0", diff, bound, peak)
            self.assertEqual(cm.exception.code, "E_IMPORT_PARITY")
            self.assertNotIn("\n", cm.exception.message)

    def test_large_logit_deeplabv3_imports_at_640x352(self):
        """The case that an absolute 1e-5 refused: DeepLabV3 (random weights, BatchNorm
        recalibrated) at the bench video's own 640x352 (--fit-pixels 230400). With
        bench/export_torchvision.py's weights the logits reach 8.8 and zero LoRA differs from the
        original by 2.4e-5; with these (calibrated on 96x64 images) they reach ~600 and differ by
        1.5e-3, i.e. 2.4e-6 of the largest logit, float32 rounding from ORT fusing differently once
        an Add follows each adapted conv. The import passes, within 1e-5 of the largest logit."""
        from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

        src = os.path.join(self.dir, "deeplabv3_large.onnx")
        export(calibrated(deeplabv3_mobilenet_v3_large, seed=0, batches=4), src)
        out = os.path.join(self.dir, "pkg_deeplabv3_large")
        code, err = run_import([src, "--classes", CLASSES8, "--out", out, "--fit-pixels", "230400"])
        self.assertEqual(code, 0, err)
        report = json.load(open(os.path.join(out, "import-report.json")))
        self.assertEqual((report["input"]["width"], report["input"]["height"]), (640, 352))
        parity = report["parity"]
        self.assertGreater(parity["logitMaxAbs"], 1.0)
        self.assertAlmostEqual(parity["bound"], 1e-5 * parity["logitMaxAbs"])
        self.assertLessEqual(parity["zeroLoraMaxAbs"], parity["bound"])
        self.assertLessEqual(parity["rank0MaxAbs"], parity["bound"])

    def test_real_rank0_mismatch_fails_with_one_line(self):
        """A surgery bug that changes the network (here: one adapted conv's weight scaled by 1.01
        in the rewritten graph) makes the rank-0 output really differ: E_IMPORT_PARITY, one line,
        exit 2, nothing reported as imported."""
        from onnx import numpy_helper

        from streamseg_import import surgery

        real = surgery.build_imported

        def broken(ins, targets, k, resize):
            model = real(ins, targets, k, resize)
            if targets:  # the reference graphs (no targets) stay right
                node = next(n for n in model.graph.node if n.name == targets[0].node)
                init = next(i for i in model.graph.initializer if i.name == node.input[1])
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.01), init.name))
            return model

        out = os.path.join(self.dir, "pkg_broken")
        surgery.build_imported = broken
        try:
            code, err = run_import([self.tiny, "--classes", "a,b,c", "--out", out, "--fit-pixels", "6144"])
        finally:
            surgery.build_imported = real
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(code, 2, err)
        self.assertTrue(lines[-1].startswith("E_IMPORT_PARITY: with zero LoRA inputs the imported graph differs"), err)
        self.assertEqual(sum(l.startswith("E_") for l in lines), 1)
        self.assertFalse(os.path.exists(os.path.join(out, "import-report.json")))

    def test_matmul_and_gemm_layers(self):
        out = os.path.join(self.dir, "pkg_tiny")
        _, targets, *_ = self.check_parity(self.tiny, "a,b,c", out)
        self.assertEqual(sorted({t.op for t in targets}), ["Conv", "Gemm", "MatMul"])

    def test_lora_pattern_and_fixed_size(self):
        fixed = os.path.join(self.dir, "tiny_fixed.onnx")
        export(TinyMixer(3), fixed, size=(48, 80), dynamic=False)
        out = os.path.join(self.dir, "pkg_fixed")
        code, err = run_import([fixed, "--classes", "a,b,c", "--out", out, "--lora-pattern", "^(mix|head)"])
        self.assertEqual(code, 0, err)
        m = json.load(open(os.path.join(out, "model.json")))
        self.assertEqual((m["input"]["width"], m["input"]["height"]), (80, 48))
        self.assertNotIn("fit", m["input"])
        self.assertEqual([t["module"] for t in m["lora"]["targets"]], ["mix", "head"])

    def test_bad_models_get_one_line_errors(self):
        bad = os.path.join(self.dir, "corrupt.onnx")
        with open(bad, "wb") as f:
            f.write(b"\x08\x07garbage" * 20)
        cases = []
        cases.append((bad, "a,b,c", "E_IMPORT_CORRUPT"))
        cases.append((os.path.join(self.dir, "missing.onnx"), "a", "E_IMPORT_FILE"))
        cases.append((self.tiny, "a,b", "E_IMPORT_CLASSES"))
        classifier = os.path.join(self.dir, "classifier.onnx")
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
        export(net, classifier, dynamic=False)
        cases.append((classifier, ",".join("abcdefghij"), "E_IMPORT_NOT_SEGMENTATION"))
        nhwc = os.path.join(self.dir, "nhwc.onnx")

        class Nhwc(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 2, 1)

            def forward(self, x):
                return self.c(x.permute(0, 3, 1, 2))

        export(Nhwc(), nhwc, size=(32, 48), dynamic=False, layout="nhwc")
        cases.append((nhwc, "a,b", "E_IMPORT_LAYOUT"))
        # An already imported graph (LoRA inputs) given again: named as such, not its 20 inputs.
        imported = os.path.join(self.dir, "pkg_reimport")
        self.assertEqual(run_import([self.tiny, "--classes", "a,b,c", "--out", imported, "--fit-pixels", "6144"])[0], 0)
        cases.append((os.path.join(imported, "model.onnx"), "a,b,c", "E_IMPORT_NOT_SEGMENTATION: " + os.path.join(imported, "model.onnx") + " is already a streamseg import"))
        for i, (src, classes, code_want) in enumerate(cases):
            code, err = run_import([src, "--classes", classes, "--out", os.path.join(self.dir, f"bad{i}")])
            lines = [l for l in err.splitlines() if l.strip()]
            self.assertEqual(code, 2, err)
            self.assertTrue(lines[-1].startswith(code_want if ":" in code_want else code_want + ": "), f"{src}: {err}")
            self.assertLess(len(lines[-1]), 400, lines[-1])
            self.assertEqual(sum(l.startswith("E_") for l in lines), 1)


if __name__ == "__main__":
    unittest.main()
