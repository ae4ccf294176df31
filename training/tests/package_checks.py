"""Checks shared by the package tests (not a test module itself).

``PackageChecks`` is a mixin: a ``unittest.TestCase`` subclass sets ``PKG`` (or
sets it in ``setUpClass`` before calling ``super().setUpClass()``) and gets

* parity: ONNX Runtime (onnxruntime-node, through training/ort_run.mjs) vs torch
  logits, max abs diff <= 1e-4, for the base (rank-1 zeros and rank-0 inputs), one
  adapter, two adapters concatenated along rank (and the same against the dense
  ΔW reference), a class subset, and the embedder;
* the package contract: manifest fields and files, ONNX inputs/outputs against the
  manifest, adapters in the HuggingFace PEFT layout, adapters/index.json centroids,
  and the 25 MB size limit.

torch and onnx are imported here at module level on purpose: if they are missing
the test modules fail to import and ``unittest`` reports an error (never a skip).
"""
from __future__ import annotations

import json
import os
import sys

# see build_package.py: idle OpenMP threads sleep instead of spinning (shared CI machines)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.dirname(HERE)
REPO = os.path.dirname(TRAINING)
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)

try:
    import onnx  # noqa: E402
    import torch  # noqa: E402
except ImportError as e:  # fail loudly: these tests are part of `npm test`
    raise ImportError(
        f"the training tests need Debian's python3-torch and python3-onnx ({e}); "
        "apt-get install python3-torch python3-onnx libopenblas0-pthread (.ci/run does) "
        "and run them with /usr/bin/python3"
    ) from e

from streamseg_train.embedder import load_embedder  # noqa: E402
from streamseg_train.model import load_base  # noqa: E402
from streamseg_train.ort import ort_run  # noqa: E402
from streamseg_train.safetensors_io import load_file  # noqa: E402

TOL = 1e-4
MAX_PACKAGE_BYTES = 25 * 1000 * 1000  # "a package stays under 25 MB"
PEFT_CONFIG_KEYS = ("peft_type", "r", "lora_alpha", "target_modules")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def safetensors_metadata(path: str) -> dict:
    """The ``__metadata__`` of a safetensors header (build_package writes preset/seed/config)."""
    import struct

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {})


def package_bytes(pkg: str) -> int:
    return sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(pkg) for fn in fns)


def load_adapter(pkg, manifest, name):
    """(adapter_config, {module: (A [r,in], B [out,r], alpha/r)}) from the PEFT files."""
    d = os.path.join(pkg, manifest["adapters"]["dir"], name)
    cfg = read_json(os.path.join(d, "adapter_config.json"))
    w = load_file(os.path.join(d, "adapter_model.safetensors"))
    scale = cfg["lora_alpha"] / cfg["r"]
    out = {}
    for t in manifest["lora"]["targets"]:
        a = w[f"base_model.model.{t['module']}.lora_A.weight"]
        b = w[f"base_model.model.{t['module']}.lora_B.weight"]
        out[t["module"]] = (a, b, scale)
    return cfg, out


class PackageChecks:
    PKG: str = ""
    LABEL: str = "package"

    # ------------------------------------------------------------------ setup
    @classmethod
    def setUpClass(cls):
        manifest = os.path.join(cls.PKG, "model.json")
        if not os.path.exists(manifest):
            # a missing package is a failure, not a skip
            raise AssertionError(f"no model package at {cls.PKG} (model.json missing)")
        torch.set_num_threads(2)
        cls.m = read_json(manifest)
        cls.net = load_base(os.path.join(cls.PKG, "base_model.safetensors"))
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
        cls.model_path = os.path.join(cls.PKG, cls.m["model"])
        cls.index = read_json(os.path.join(cls.PKG, cls.m["adapters"]["index"]))
        cls.adapter_names = [a["path"] for a in cls.index["adapters"]]

    # ---------------------------------------------------------------- helpers
    def _feeds(self, lora_np, ce=None):
        feeds = {self.m["input"]["name"]: self.x.numpy(), self.m["classEmbeddings"]["input"]: (self.ce if ce is None else ce).numpy()}
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
        got = ort_run(self.model_path, self._feeds(lora_np, ce))[self.m["output"]["name"]]
        self.assertEqual(got.shape, ref.shape)
        diff = float(np.abs(got - ref).max())
        print(f"\n[parity {self.LABEL}] {label}: logits {tuple(got.shape)} max|ort-torch| = {diff:.3e}", file=sys.stderr, flush=True)
        self.assertLessEqual(diff, TOL, label)
        return got

    def _zeros(self, rank):
        return {t["module"]: (np.zeros((rank, t["in"]), "f4"), np.zeros((t["out"], rank), "f4")) for t in self.m["lora"]["targets"]}

    # ----------------------------------------------------------------- parity
    def test_parity_base_rank1_zeros_and_rank0(self):
        base = self._check(self._zeros(1), "base (rank-1 zeros)")
        with torch.no_grad():
            plain = self.net(self.x, self.ce).numpy()
        self.assertLessEqual(float(np.abs(base - plain).max()), TOL)
        self._check(self._zeros(0), "base (rank-0 empty tensors)")

    def test_parity_other_input_shapes(self):
        """H and W are dynamic: the portrait and 4:3 inputs the producer plans (input.fit) run and match torch."""
        self.assertIn("fit", self.m["input"], "build_package.py packages take aspect-preserving inputs (input.fit)")
        x0 = self.x
        try:
            for h, w in ((224, 128), (144, 192)):
                self.x = torch.nn.functional.interpolate(x0, size=(h, w), mode="bilinear", align_corners=False)
                self._check(self._zeros(1), f"base at {w}x{h}")
        finally:
            self.x = x0

    def test_parity_one_adapter(self):
        name = self.adapter_names[0]
        _, w = load_adapter(self.PKG, self.m, name)
        lora = {k: (a, (b * s).astype("f4")) for k, (a, b, s) in w.items()}
        got = self._check(lora, f"adapter {name} (alpha/r folded into B)")
        base = self._torch(self._zeros(1))
        # the adapter must actually change the output (guards against all-zero B)
        self.assertGreater(float(np.abs(got - base).max()), 1e-3, f"adapter {name} has no effect")

    def test_parity_two_adapters_concatenated(self):
        self.assertGreaterEqual(len(self.adapter_names), 2, "need two adapters to test a merge")
        n1, n2 = self.adapter_names[0], self.adapter_names[1]
        _, w1 = load_adapter(self.PKG, self.m, n1)
        _, w2 = load_adapter(self.PKG, self.m, n2)
        wt = (0.6, 0.4)
        lora = {}
        for k in w1:
            a1, b1, s1 = w1[k]
            a2, b2, s2 = w2[k]
            lora[k] = (np.vstack([a1, a2]).astype("f4"), np.hstack([wt[0] * s1 * b1, wt[1] * s2 * b2]).astype("f4"))
            self.assertEqual(lora[k][0].shape[0], a1.shape[0] + a2.shape[0])
        got = self._check(lora, f"cat merge 0.6*{n1} + 0.4*{n2} (rank {lora[k][0].shape[0]})")
        # cat is exact: the same as adding each adapter's dense delta
        dense = {}
        for k in w1:
            a1, b1, s1 = w1[k]
            a2, b2, s2 = w2[k]
            dw = wt[0] * s1 * (b1 @ a1) + wt[1] * s2 * (b2 @ a2)  # [out, in]
            dense[k] = (dw.astype("f4"), np.eye(dw.shape[0], dtype="f4"))  # x·dWᵀ·Iᵀ
        ref = self._torch(dense)
        self.assertLessEqual(float(np.abs(got - ref).max()), TOL)

    def test_parity_class_subset(self):
        ce = self.ce[[0, 3, 5]]
        self._check(self._zeros(1), "base, class subset C=3", ce=ce)

    def test_parity_embedder(self):
        e = self.m["embedder"]
        got = ort_run(os.path.join(self.PKG, e["file"]), {e["input"]: self.x.numpy()})[e["output"]]
        self.assertEqual(got.shape, (2, e["size"]))
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        with torch.no_grad():
            ref = load_embedder(os.path.join(self.PKG, "base_model.safetensors"))(self.x).numpy()
        diff = float(np.abs(got - ref).max())
        print(f"\n[parity {self.LABEL}] embedder: embedding {tuple(got.shape)} max|ort-torch| = {diff:.3e}", file=sys.stderr, flush=True)
        self.assertLessEqual(diff, TOL)

    def test_style_gate_sends_unlike_scenes_to_the_base(self):
        """A frame unlike every training condition (pixel noise at full contrast) embeds on the
        base domain's centroid, so retrieval runs the base model for it."""
        w = load_file(os.path.join(self.PKG, "base_model.safetensors"))
        self.assertIn("embedder.gate", w, "the package's embedder has no style gate")
        g = torch.Generator().manual_seed(99)
        inp = self.m["input"]
        noise = torch.randint(0, 2, (2, 3, inp["height"], inp["width"]), generator=g).float()
        mean = torch.tensor(inp["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(inp["std"]).view(1, 3, 1, 1)
        e = self.m["embedder"]
        got = ort_run(os.path.join(self.PKG, e["file"]), {e["input"]: ((noise - mean) / std).numpy()})[e["output"]]
        base = np.array(self.index["base"]["centroids"][0])
        cos = got @ base / np.linalg.norm(got, axis=1) / np.linalg.norm(base)
        print(f"\n[gate {self.LABEL}] noise frames: cosine to the base centroid {np.round(cos, 4).tolist()}", file=sys.stderr, flush=True)
        self.assertTrue(np.all(cos > 0.99), cos)

    # --------------------------------------------------------------- contract
    def test_manifest(self):
        m = self.m
        for key in ("name", "version", "input", "output", "classes", "classEmbeddings", "lora", "embedder", "adapters", "model"):
            self.assertIn(key, m)
        inp = m["input"]
        self.assertEqual(inp["layout"], "NCHW")
        self.assertTrue(inp["width"] > 0 and inp["height"] > 0)
        self.assertEqual(len(inp["mean"]), 3)
        self.assertEqual(len(inp["std"]), 3)
        self.assertTrue(all(s > 0 for s in inp["std"]))
        if "fit" in inp:
            self.assertGreater(inp["fit"]["pixels"], 0)
            self.assertGreater(inp["fit"]["stride"], 0)
            self.assertGreaterEqual(inp["fit"]["maxSide"], max(inp["width"], inp["height"]))
        dim = m["classEmbeddings"]["dim"]
        names = [c["name"] for c in m["classes"]]
        self.assertEqual(len(names), len(set(names)), "class names must be unique")
        for c in m["classes"]:
            self.assertEqual(len(c["color"]), 3)
            self.assertTrue(all(isinstance(v, int) and 0 <= v <= 255 for v in c["color"]), c)
            self.assertEqual(len(c["embedding"]), dim)
        mods = [t["module"] for t in m["lora"]["targets"]]
        self.assertTrue(mods, "no LoRA targets")
        self.assertEqual(len(mods), len(set(mods)))
        for t in m["lora"]["targets"]:
            self.assertTrue(t["in"] > 0 and t["out"] > 0)
        # the torch base has the same targets, in the same order
        self.assertEqual([(t["module"], t["in"], t["out"]) for t in m["lora"]["targets"]], [tuple(x) for x in self.net.lora_targets()])
        for rel in (m["model"], m["embedder"]["file"], m["adapters"]["index"], "base_model.safetensors"):
            self.assertTrue(os.path.isfile(os.path.join(self.PKG, rel)), rel)
        self.assertTrue(os.path.isdir(os.path.join(self.PKG, m["adapters"]["dir"])))

    def test_onnx_graphs_match_manifest(self):
        g = onnx.load(self.model_path)
        onnx.checker.check_model(g)
        names = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in g.graph.input}
        inp = self.m["input"]
        self.assertEqual(names[inp["name"]][1], 3)
        self.assertEqual(names[self.m["classEmbeddings"]["input"]][1], self.m["classEmbeddings"]["dim"])
        ranks = set()
        for t in self.m["lora"]["targets"]:
            self.assertEqual(names[t["inputA"]][1], t["in"])
            self.assertEqual(names[t["inputB"]][0], t["out"])
            self.assertEqual(names[t["inputA"]][0], names[t["inputB"]][1])
            self.assertIsInstance(names[t["inputA"]][0], str, "LoRA rank must be a dynamic dimension")
            ranks.add(names[t["inputA"]][0])
        self.assertEqual(len(ranks), len(self.m["lora"]["targets"]), "each target needs its own rank dim")
        expected = {inp["name"], self.m["classEmbeddings"]["input"]} | {t[k] for t in self.m["lora"]["targets"] for k in ("inputA", "inputB")}
        self.assertEqual(set(names), expected)
        self.assertEqual([o.name for o in g.graph.output], [self.m["output"]["name"]])
        e = self.m["embedder"]
        ge = onnx.load(os.path.join(self.PKG, e["file"]))
        onnx.checker.check_model(ge)
        self.assertEqual([i.name for i in ge.graph.input], [e["input"]])
        self.assertEqual([o.name for o in ge.graph.output], [e["output"]])
        out_dim = ge.graph.output[0].type.tensor_type.shape.dim[1]
        if out_dim.dim_value:  # may be symbolic; the parity test checks the real shape
            self.assertEqual(out_dim.dim_value, e["size"])

    def test_adapters_peft_layout(self):
        targets = {t["module"]: t for t in self.m["lora"]["targets"]}
        ad_dir = os.path.join(self.PKG, self.m["adapters"]["dir"])
        on_disk = sorted(d for d in os.listdir(ad_dir) if os.path.isdir(os.path.join(ad_dir, d)))
        self.assertEqual(on_disk, sorted(self.adapter_names), "adapter folders and index.json disagree")
        for name in self.adapter_names:
            d = os.path.join(ad_dir, name)
            self.assertEqual(sorted(os.listdir(d)), ["adapter_config.json", "adapter_model.safetensors"], name)
            cfg = read_json(os.path.join(d, "adapter_config.json"))
            for k in PEFT_CONFIG_KEYS:
                self.assertIn(k, cfg, f"{name}: adapter_config.json lacks {k}")
            self.assertEqual(cfg["peft_type"], "LORA")
            self.assertIsInstance(cfg["r"], int)
            self.assertGreater(cfg["r"], 0)
            self.assertGreater(cfg["lora_alpha"], 0)
            self.assertEqual(sorted(cfg["target_modules"]), sorted(targets))
            w = load_file(os.path.join(d, "adapter_model.safetensors"))
            want = {f"base_model.model.{m}.lora_{ab}.weight" for m in targets for ab in "AB"}
            self.assertEqual(set(w), want, f"{name}: tensor names are not the PEFT layout")
            for mod, t in targets.items():
                a = w[f"base_model.model.{mod}.lora_A.weight"]
                b = w[f"base_model.model.{mod}.lora_B.weight"]
                self.assertEqual(a.shape, (cfg["r"], t["in"]), f"{name}/{mod} lora_A")
                self.assertEqual(b.shape, (t["out"], cfg["r"]), f"{name}/{mod} lora_B")
                self.assertEqual(a.dtype, np.float32)
                self.assertEqual(b.dtype, np.float32)
                self.assertTrue(np.isfinite(a).all() and np.isfinite(b).all())

    def test_index_centroids(self):
        idx = self.index
        size = idx["embedding"]["size"]
        self.assertEqual(size, self.m["embedder"]["size"])
        self.assertIn(idx["embedding"].get("metric", "cosine"), ("cosine",))
        self.assertTrue(idx["adapters"], "index.json lists no adapters")
        names = [a["name"] for a in idx["adapters"]]
        self.assertEqual(len(names), len(set(names)))
        cents = []
        for a in idx["adapters"]:
            self.assertTrue(os.path.isdir(os.path.join(self.PKG, self.m["adapters"]["dir"], a["path"])), a["path"])
            self.assertTrue(a["centroids"], f"{a['name']}: no centroids")
            for c in a["centroids"]:
                self.assertEqual(len(c), size)
                self.assertAlmostEqual(float(np.linalg.norm(c)), 1.0, places=4)
                cents.append(c)
        # distinct conditions must not collapse onto one centroid
        c = np.array(cents)
        sims = c @ c.T - 2 * np.eye(len(c))
        self.assertLess(float(sims.max()), 0.9999, "two adapters share a centroid")

    def test_size_limit(self):
        total = package_bytes(self.PKG)
        print(f"\n[package {self.LABEL}] {self.PKG}: {total / 1e6:.2f} MB (limit {MAX_PACKAGE_BYTES / 1e6:.0f} MB)", file=sys.stderr, flush=True)
        self.assertLessEqual(total, MAX_PACKAGE_BYTES)
