"""ONNX Runtime (onnxruntime-node) vs torch parity for a built model package.

  /usr/bin/python3 -m unittest discover -s training/tests

Package under test: $STREAMSEG_PACKAGE, else models/default. CI builds the tiny
preset first (training/build_package.py --preset tiny --out DIR) and points
STREAMSEG_PACKAGE at DIR.
"""
from __future__ import annotations

import json
import os
import sys
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.dirname(HERE)
REPO = os.path.dirname(TRAINING)
sys.path.insert(0, TRAINING)

from streamseg_train.embedder import load_embedder  # noqa: E402
from streamseg_train.model import load_base  # noqa: E402
from streamseg_train.ort import ort_run  # noqa: E402
from streamseg_train.safetensors_io import load_file  # noqa: E402

PKG = os.environ.get("STREAMSEG_PACKAGE") or os.path.join(REPO, "models", "default")
TOL = 1e-4


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _load_adapter(pkg, manifest, name):
    d = os.path.join(pkg, manifest["adapters"]["dir"], name)
    with open(os.path.join(d, "adapter_config.json")) as f:
        cfg = json.load(f)
    w = load_file(os.path.join(d, "adapter_model.safetensors"))
    scale = cfg["lora_alpha"] / cfg["r"]
    out = {}
    for t in manifest["lora"]["targets"]:
        a = w[f"base_model.model.{t['module']}.lora_A.weight"]
        b = w[f"base_model.model.{t['module']}.lora_B.weight"]
        out[t["module"]] = (a, b, scale)
    return cfg, out


@unittest.skipUnless(os.path.exists(os.path.join(PKG, "model.json")), f"no package at {PKG}")
class ParityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        with open(os.path.join(PKG, "model.json")) as f:
            cls.m = json.load(f)
        cls.net = load_base(os.path.join(PKG, "base_model.safetensors"))
        inp = cls.m["input"]
        g = torch.Generator().manual_seed(1234)
        # a plausible image batch: smooth random colours, normalised as the manifest says
        raw = torch.rand(2, 3, inp["height"] // 8, inp["width"] // 8, generator=g)
        raw = torch.nn.functional.interpolate(raw, size=(inp["height"], inp["width"]), mode="bilinear", align_corners=False)
        raw = (raw + 0.05 * torch.rand(raw.shape, generator=g)).clamp(0, 1)
        mean = torch.tensor(inp["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(inp["std"]).view(1, 3, 1, 1)
        cls.x = ((raw - mean) / std).float()
        cls.ce = torch.tensor([c["embedding"] for c in cls.m["classes"]], dtype=torch.float32)
        cls.model_path = os.path.join(PKG, cls.m["model"])
        cls.adapter_names = [a["name"] for a in _read_json(os.path.join(PKG, cls.m["adapters"]["index"]))["adapters"]]

    def _feeds(self, lora_np, ce=None):
        feeds = {"image": self.x.numpy(), "class_embeddings": (self.ce if ce is None else ce).numpy()}
        for t in self.m["lora"]["targets"]:
            a, b = lora_np[t["module"]]
            feeds[t["inputA"]] = a
            feeds[t["inputB"]] = b
        return feeds

    def _torch(self, lora_np, ce=None):
        lora = {k: (torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))) for k, (a, b) in lora_np.items()}
        with torch.no_grad():
            return self.net(self.x, self.ce if ce is None else ce, lora).numpy()

    def _check(self, lora_np, label, ce=None):
        ref = self._torch(lora_np, ce)
        got = ort_run(self.model_path, self._feeds(lora_np, ce))["logits"]
        self.assertEqual(got.shape, ref.shape)
        diff = float(np.abs(got - ref).max())
        print(f"\n[parity] {label}: logits {tuple(got.shape)} max|ort-torch| = {diff:.3e}", flush=True)
        self.assertLessEqual(diff, TOL, label)
        return got

    def _zeros(self, rank):
        return {t["module"]: (np.zeros((rank, t["in"]), "f4"), np.zeros((t["out"], rank), "f4")) for t in self.m["lora"]["targets"]}

    def test_manifest_matches_graph_and_adapters(self):
        import onnx

        g = onnx.load(self.model_path, load_external_data=False)
        names = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in g.graph.input}
        self.assertEqual(names["image"][1], 3)
        self.assertEqual(names["class_embeddings"][1], self.m["classEmbeddings"]["dim"])
        ranks = set()
        for t in self.m["lora"]["targets"]:
            self.assertEqual(names[t["inputA"]][1], t["in"])
            self.assertEqual(names[t["inputB"]][0], t["out"])
            self.assertEqual(names[t["inputA"]][0], names[t["inputB"]][1])
            ranks.add(names[t["inputA"]][0])
        self.assertEqual(len(ranks), len(self.m["lora"]["targets"]), "each target needs its own rank dim")
        self.assertEqual([o.name for o in g.graph.output], [self.m["output"]["name"]])
        idx = _read_json(os.path.join(PKG, self.m["adapters"]["index"]))
        for a in idx["adapters"]:
            cfg, w = _load_adapter(PKG, self.m, a["path"])
            self.assertEqual(cfg["peft_type"], "LORA")
            self.assertEqual(sorted(cfg["target_modules"]), sorted(t["module"] for t in self.m["lora"]["targets"]))
            for t in self.m["lora"]["targets"]:
                A, B, _ = w[t["module"]]
                self.assertEqual(A.shape, (cfg["r"], t["in"]))
                self.assertEqual(B.shape, (t["out"], cfg["r"]))
            for c in a["centroids"]:
                self.assertEqual(len(c), idx["embedding"]["size"])
                self.assertAlmostEqual(float(np.linalg.norm(c)), 1.0, places=4)

    def test_base_rank1_zeros_and_rank0(self):
        base = self._check(self._zeros(1), "base (rank-1 zeros)")
        with torch.no_grad():
            plain = self.net(self.x, self.ce).numpy()
        self.assertLessEqual(float(np.abs(base - plain).max()), TOL)
        self._check(self._zeros(0), "base (rank-0 empty tensors)")

    def test_one_adapter(self):
        name = self.adapter_names[0]
        _, w = _load_adapter(PKG, self.m, name)
        lora = {k: (a, (b * s).astype("f4")) for k, (a, b, s) in w.items()}
        self._check(lora, f"adapter {name} (alpha/r folded into B)")

    def test_two_adapters_concatenated(self):
        n1, n2 = self.adapter_names[0], self.adapter_names[1 % len(self.adapter_names)]
        _, w1 = _load_adapter(PKG, self.m, n1)
        _, w2 = _load_adapter(PKG, self.m, n2)
        wt = (0.6, 0.4)
        lora = {}
        for k in w1:
            a1, b1, s1 = w1[k]
            a2, b2, s2 = w2[k]
            lora[k] = (np.vstack([a1, a2]).astype("f4"), np.hstack([wt[0] * s1 * b1, wt[1] * s2 * b2]).astype("f4"))
        got = self._check(lora, f"cat merge 0.6*{n1} + 0.4*{n2}")
        # cat is exact: the same as adding each adapter's dense delta
        dense = {}
        for k in w1:
            a1, b1, s1 = w1[k]
            a2, b2, s2 = w2[k]
            dw = wt[0] * s1 * (b1 @ a1) + wt[1] * s2 * (b2 @ a2)  # [out, in]
            dense[k] = (dw.astype("f4"), np.eye(dw.shape[0], dtype="f4"))  # x·dWᵀ·Iᵀ
        ref = self._torch(dense)
        self.assertLessEqual(float(np.abs(got - ref).max()), TOL)

    def test_class_subset(self):
        ce = self.ce[[0, 3, 5]]
        self._check(self._zeros(1), "base, class subset C=3", ce=ce)

    def test_embedder(self):
        e = self.m["embedder"]
        got = ort_run(os.path.join(PKG, e["file"]), {e["input"]: self.x.numpy()})[e["output"]]
        self.assertEqual(got.shape, (2, e["size"]))
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        with torch.no_grad():
            ref = load_embedder(os.path.join(PKG, "base_model.safetensors"))(self.x).numpy()
        diff = float(np.abs(got - ref).max())
        print(f"\n[parity] embedder: embedding {tuple(got.shape)} max|ort-torch| = {diff:.3e}", flush=True)
        self.assertLessEqual(diff, TOL)


if __name__ == "__main__":
    unittest.main()
