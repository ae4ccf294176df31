"""CI run of the whole build pipeline on the tiny preset, from nothing, then the
same parity and contract checks as for models/default (package_checks.py).

  /usr/bin/python3 training/build_package.py --preset tiny --out TMP/pkg --data-dir TMP/data

runs in a fresh temp dir: stills are rendered by the streamseg CLI
(`streamseg synth --stills`, through node + tsx), the base is trained on clear
stills, one adapter per source condition, then ONNX export, embedder, index and
manifest. Stage timings from the build log are printed.

$STREAMSEG_TINY_PACKAGE=DIR reuses an existing tiny build (from a previous run
with $STREAMSEG_KEEP_TINY=1, which keeps the temp dir and prints its path)
instead of building; there is no way to skip the build silently.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from package_checks import REPO, TRAINING, PackageChecks, read_json, safetensors_metadata  # noqa: E402
from streamseg_train import data as D  # noqa: E402

BUILD = os.path.join(TRAINING, "build_package.py")


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


class TinyBuildTest(PackageChecks, unittest.TestCase):
    LABEL = "tiny"

    @classmethod
    def setUpClass(cls):
        reuse = os.environ.get("STREAMSEG_TINY_PACKAGE")
        if reuse:
            cls.tmp = None
            cls.root = os.path.dirname(os.path.abspath(reuse))
            cls.PKG = os.path.abspath(reuse)
            _log(f"\n[tiny] reusing {cls.PKG} ($STREAMSEG_TINY_PACKAGE)")
        else:
            cls.tmp = tempfile.mkdtemp(prefix="streamseg_tiny_")
            cls.root = cls.tmp
            cls.PKG = os.path.join(cls.tmp, "pkg")
            cmd = [sys.executable, BUILD, "--preset", "tiny", "--out", cls.PKG, "--data-dir", os.path.join(cls.tmp, "data")]
            _log(f"\n[tiny] {' '.join(cmd)}")
            t0 = time.time()
            res = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            wall = time.time() - t0
            with open(os.path.join(cls.tmp, "build.log"), "w") as f:
                f.write(res.stdout)
            if res.returncode != 0:
                tail = "\n".join(res.stdout.splitlines()[-40:])
                raise AssertionError(f"tiny build failed (exit {res.returncode}) after {wall:.0f}s:\n{tail}")
            # the stage lines: one per rendered condition, base, each adapter, export, embedder, totals
            for line in res.stdout.splitlines():
                if re.match(r"\[\s*[\d.]+s\] \[(synth|base\] done|\w+\] done|export|embedder|timing|package)", line):
                    _log("  " + line)
            _log(f"[tiny] build wall {wall:.1f}s")
        with open(os.path.join(cls.root, "build.log")) as f:
            cls.build_log = f.read()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        if cls.tmp and not os.environ.get("STREAMSEG_KEEP_TINY"):
            shutil.rmtree(cls.tmp, ignore_errors=True)
        elif cls.tmp:
            _log(f"[tiny] kept {cls.tmp} (STREAMSEG_TINY_PACKAGE={cls.PKG} reuses it)")

    def test_built_with_tiny_preset(self):
        meta = safetensors_metadata(os.path.join(self.PKG, "base_model.safetensors"))
        self.assertEqual(meta.get("preset"), "tiny")
        self.assertEqual(meta.get("seed"), "0")
        self.assertEqual([a["condition"] for a in self.index["adapters"]], D.ADAPTER_CONDITIONS)
        for a in self.adapter_names:
            cfg = read_json(os.path.join(self.PKG, self.m["adapters"]["dir"], a, "adapter_config.json"))
            self.assertEqual(cfg["r"], 4)
            self.assertEqual(cfg["train_steps"], 8)
        self.assertIn("[timing]", self.build_log)

    def test_training_stills_are_single_conditions_with_training_seeds(self):
        """Compositions are never rendered for training, and training seeds never reach the held-out range."""
        rendered = re.findall(r"\[synth\] (\S+) x(\d+) seed=(\d+)", self.build_log)
        # one render per (condition, source size) of the preset
        self.assertEqual(sorted(set(c for c, _, _ in rendered)), sorted(D.TRAIN_CONDITIONS), rendered)
        self.assertEqual(len(rendered), len(D.TRAIN_CONDITIONS) * len(D.TINY_SOURCES), rendered)
        for cond, _, seed in rendered:
            self.assertNotIn("+", cond)
            self.assertGreaterEqual(int(seed), D.TRAIN_SEED_BASE)
            self.assertLess(int(seed), D.EVAL_SEED_BASE)
        data = os.path.join(self.root, "data")
        (train_dir,) = [d for d in os.listdir(data) if d.startswith("train_")]
        self.assertEqual(sorted(os.listdir(os.path.join(data, train_dir))), sorted(D.TRAIN_CONDITIONS))
        for cond in D.TRAIN_CONDITIONS:
            sources = sorted(os.listdir(os.path.join(data, train_dir, cond)))
            self.assertEqual(sources, sorted(f"{w}x{h}" for (w, h), _ in D.TINY_SOURCES))
            metas = []
            for source in sources:
                with open(os.path.join(data, train_dir, cond, source, "meta.jsonl")) as f:
                    metas += [json.loads(l) for l in f if l.strip()]
            self.assertTrue(metas)
            for mm in metas:
                self.assertEqual(mm["condition"], cond)
                # rendered at the source size, stored as the producer's model input of it
                self.assertEqual(f"{mm['sourceWidth']}x{mm['sourceHeight']}" in sources, True)
                self.assertEqual((mm["width"] * mm["height"]) % 256, 0)
                if cond != "clear":
                    self.assertEqual(mm.get("components", [cond]), [cond])

    def test_style_gate_keeps_training_conditions_and_matches_torch(self):
        """Stills of every training condition pass the gate (their own probabilities, not the
        base's), and embedder.onnx matches the torch embedder on them (the gate open, the
        head's path is what is compared)."""
        import numpy as np
        import torch
        from streamseg_train.embedder import load_embedder
        from streamseg_train.ort import ort_run

        data = os.path.join(self.root, "data")
        (train_dir,) = [d for d in os.listdir(data) if d.startswith("train_")]
        emb = load_embedder(os.path.join(self.PKG, "base_model.safetensors"))
        inp, e = self.m["input"], self.m["embedder"]
        mean = np.array(inp["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.array(inp["std"], dtype=np.float32).reshape(1, 3, 1, 1)
        classes = self.index["embedding"]["dimensions"]
        for cond in D.TRAIN_CONDITIONS:
            for source in sorted(os.listdir(os.path.join(data, train_dir, cond))):
                stills = D.load_stills(os.path.join(data, train_dir, cond, source), limit=8)
                x = ((stills.images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2) - mean) / std
                got = ort_run(os.path.join(self.PKG, e["file"]), {e["input"]: x})[e["output"]]
                with torch.no_grad():
                    ref = emb(torch.from_numpy(x)).numpy()
                self.assertLessEqual(float(np.abs(got - ref).max()), 1e-4, f"{cond} {source}")
                dist = emb.gate_distance(torch.from_numpy(x)).numpy()
                self.assertGreaterEqual(float(np.mean(dist < emb.threshold)), 0.85, f"{cond} {source}: gate distances {dist}, threshold {emb.threshold}")
                if cond != "clear":
                    # the gate left the head's answer in place: the condition's own column leads
                    self.assertGreater(float(np.mean(np.argmax(got, 1) == classes.index(cond))), 0.5, f"{cond} {source}")


if __name__ == "__main__":
    unittest.main()
