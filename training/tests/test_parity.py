"""The committed package (models/default): ONNX Runtime vs torch parity and the
package contract (see package_checks.py).

  npm run test:py          # from the repo root; also runs test_tiny_build.py
  /usr/bin/python3 -m unittest discover -s training/tests -t training -p test_parity.py

$STREAMSEG_PACKAGE points these checks at another package directory.
"""
from __future__ import annotations

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from package_checks import REPO, PackageChecks, read_json, safetensors_metadata  # noqa: E402

PKG = os.environ.get("STREAMSEG_PACKAGE") or os.path.join(REPO, "models", "default")


class DefaultPackageTest(PackageChecks, unittest.TestCase):
    PKG = PKG
    LABEL = "default" if not os.environ.get("STREAMSEG_PACKAGE") else os.path.basename(PKG.rstrip("/"))

    @unittest.skipIf(os.environ.get("STREAMSEG_PACKAGE"), "checks specific to models/default")
    def test_default_is_the_full_preset(self):
        """models/default is the shipped build: full preset, one rank-8 adapter per single source condition."""
        meta = safetensors_metadata(os.path.join(self.PKG, "base_model.safetensors"))
        self.assertEqual(meta.get("preset"), "full")
        self.assertEqual(sorted(a["condition"] for a in self.index["adapters"]), ["dusk", "fog", "night", "rain", "snow"])
        for a in self.adapter_names:
            cfg = read_json(os.path.join(self.PKG, self.m["adapters"]["dir"], a, "adapter_config.json"))
            self.assertEqual(cfg["r"], 8)
            self.assertNotIn("+", cfg["condition"], "adapters are trained on single conditions only")


if __name__ == "__main__":
    unittest.main()
