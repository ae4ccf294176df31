"""Round trip of the minimal safetensors writer/reader (format: 8-byte LE header
length, JSON header with dtype/shape/data_offsets, raw little-endian data)."""
from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from streamseg_train.safetensors_io import load_file, save_file  # noqa: E402


class SafetensorsTest(unittest.TestCase):
    def test_round_trip_and_header(self):
        rng = np.random.default_rng(0)
        t = {
            "base_model.model.dec.proj.lora_A.weight": rng.standard_normal((8, 64)).astype("f4"),
            "base_model.model.dec.proj.lora_B.weight": rng.standard_normal((64, 8)).astype("f4"),
            "empty": np.zeros((0, 4), "f4"),
        }
        with tempfile.TemporaryDirectory() as td:
            p = os.path.join(td, "a.safetensors")
            save_file(t, p, metadata={"format": "pt"})
            back = load_file(p)
            self.assertEqual(sorted(back), sorted(t))
            for k in t:
                np.testing.assert_array_equal(back[k], t[k])
            with open(p, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
                body = f.read()
            self.assertEqual(n % 8, 0)
            self.assertEqual(header["__metadata__"], {"format": "pt"})
            ends = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
            self.assertEqual(ends[0][0], 0)
            self.assertEqual(ends[-1][1], len(body))
            for k, v in header.items():
                if k != "__metadata__":
                    self.assertEqual(v["dtype"], "F32")


if __name__ == "__main__":
    unittest.main()
