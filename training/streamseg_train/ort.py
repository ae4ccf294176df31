"""Call ONNX Runtime (onnxruntime-node) from Python through training/ort_run.mjs."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Dict, Optional

import numpy as np

HELPER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ort_run.mjs")


def ort_run(model_path: str, inputs: Dict[str, np.ndarray], chunk: Optional[tuple] = None, threads: int = 2) -> Dict[str, np.ndarray]:
    """Run ``model_path`` on float32 ``inputs``; returns every output as float32 numpy.

    ``chunk=("image", 32)`` splits that input along dim 0 into session runs of 32.
    """
    with tempfile.TemporaryDirectory(prefix="ort_") as td:
        spec = {"model": os.path.abspath(model_path), "outDir": os.path.join(td, "out"), "inputs": {}, "threads": threads}
        for i, (name, arr) in enumerate(inputs.items()):
            arr = np.ascontiguousarray(arr, dtype="<f4")
            fn = os.path.join(td, f"in{i}.f32")
            arr.tofile(fn)
            spec["inputs"][name] = {"file": fn, "dims": list(arr.shape)}
        if chunk:
            spec["chunk"] = {"input": chunk[0], "size": int(chunk[1])}
        sp = os.path.join(td, "spec.json")
        with open(sp, "w") as f:
            json.dump(spec, f)
        res = subprocess.run(["node", HELPER, sp], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"ort_run.mjs failed ({res.returncode}): {res.stderr[-4000:]}")
        with open(os.path.join(spec["outDir"], "outputs.json")) as f:
            meta = json.load(f)
        out = {}
        for name, m in meta.items():
            out[name] = np.fromfile(os.path.join(spec["outDir"], m["file"]), dtype="<f4").reshape(m["dims"])
        return out
