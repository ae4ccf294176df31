"""Training-data rules (no renderer needed): compositions are never rendered for
training, training and held-out seed ranges are disjoint, and the PNG reader."""
from __future__ import annotations

import ast
import os
import struct
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from package_checks import TRAINING  # noqa: E402
from streamseg_train import data as D  # noqa: E402


def _png(path, px: np.ndarray, filters):
    """Write an 8-bit PNG using the given filter type per row (cycled)."""
    h, w = px.shape[:2]
    ch = 1 if px.ndim == 2 else px.shape[2]
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[ch]
    rows = px.reshape(h, w * ch).astype(np.int32)
    out = bytearray()
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        ft = filters[y % len(filters)]
        cur = rows[y]
        left = np.concatenate([np.zeros(ch, np.int32), cur[:-ch]])
        upleft = np.concatenate([np.zeros(ch, np.int32), prev[:-ch]])
        if ft == 0:
            f = cur
        elif ft == 1:
            f = cur - left
        elif ft == 2:
            f = cur - prev
        elif ft == 3:
            f = cur - (left + prev) // 2
        else:
            pa, pb, pc = np.abs(prev - upleft), np.abs(left - upleft), np.abs(left + prev - 2 * upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            f = cur - pred
        out.append(ft)
        out += (f & 255).astype(np.uint8).tobytes()
        prev = cur

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)))
        fh.write(chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b""))


class TrainingDataRulesTest(unittest.TestCase):
    def test_train_conditions_are_single(self):
        self.assertEqual(D.TRAIN_CONDITIONS[0], "clear")
        self.assertEqual(D.TRAIN_CONDITIONS[1:], D.ADAPTER_CONDITIONS)
        for c in D.TRAIN_CONDITIONS:
            self.assertNotIn("+", c)

    def test_compositions_are_refused_for_training(self):
        with tempfile.TemporaryDirectory() as td:
            with self.assertRaises(ValueError):
                D.render_stills(os.path.join(td, "x"), 1, D.TRAIN_SEED_BASE, "fog+night", log=lambda m: None)
            self.assertFalse(os.path.exists(os.path.join(td, "x")))

    def test_training_renders_only_train_conditions(self):
        """Training stills are rendered in one place, data.training_stills, by one render_stills call
        inside `for cond in TRAIN_CONDITIONS` (per source size within it); the build and the
        retrieval refit render nothing themselves."""
        with open(os.path.join(TRAINING, "streamseg_train", "data.py")) as f:
            tree = ast.parse(f.read())
        fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "training_stills")
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "render_stills"]
        self.assertEqual(len(calls), 1)
        loops = [n for n in ast.walk(fn) if isinstance(n, ast.For) and any(c is calls[0] for c in ast.walk(n))]
        self.assertTrue(loops)
        conditions = [l for l in loops if ast.unparse(l.iter) == "TRAIN_CONDITIONS"]
        self.assertEqual(len(conditions), 1, [ast.unparse(l.iter) for l in loops])
        self.assertEqual(ast.unparse(conditions[0].target), "cond")
        self.assertEqual(ast.unparse(calls[0].args[3]), "cond")
        self.assertNotIn("heldout", [k.arg for k in calls[0].keywords])
        for script in ("build_package.py", "refit_retrieval.py"):
            with open(os.path.join(TRAINING, script)) as f:
                tree = ast.parse(f.read())
            direct = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and "render_stills" in ast.unparse(n.func)]
            self.assertEqual(direct, [], script)

    def test_seed_ranges_are_disjoint(self):
        # training: TRAIN_SEED_BASE + stride*condition + 10_000*seed; held-out from EVAL_SEED_BASE
        top_train = D.condition_seed(D.TRAIN_SEED_BASE, D.TRAIN_CONDITIONS[-1]) + 99 * 10_000 + 10_000
        self.assertLess(top_train, D.EVAL_SEED_BASE)
        for c in D.TRAIN_CONDITIONS:
            self.assertGreaterEqual(D.condition_seed(D.TRAIN_SEED_BASE, c), D.TRAIN_SEED_BASE)

    def test_png_reader_all_filters_without_pillow(self):
        rng = np.random.default_rng(0)
        saved = sys.modules.get("PIL", "absent")
        sys.modules["PIL"] = None  # force the zlib decoder
        try:
            with tempfile.TemporaryDirectory() as td:
                for ch in (1, 3, 4):
                    shape = (17, 23) if ch == 1 else (17, 23, ch)
                    px = rng.integers(0, 256, shape).astype(np.uint8)
                    p = os.path.join(td, f"c{ch}.png")
                    _png(p, px, filters=[0, 1, 2, 3, 4])
                    if ch == 1:
                        np.testing.assert_array_equal(D.read_png(p, 1), px)
                        np.testing.assert_array_equal(D.read_png(p, 3), np.repeat(px[..., None], 3, 2))
                    else:
                        np.testing.assert_array_equal(D.read_png(p, 3), px[..., :3])
        finally:
            if saved == "absent":
                del sys.modules["PIL"]
            else:
                sys.modules["PIL"] = saved


if __name__ == "__main__":
    unittest.main()
