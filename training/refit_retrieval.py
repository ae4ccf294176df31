"""Refit a package's retrieval (embedder.onnx, adapters/index.json, the manifest's embedder
entry and the embedder constants in base_model.safetensors) on its training stills, keeping
the base and the adapters as they are.

  /usr/bin/python3 training/refit_retrieval.py --package models/default

The same fit `build_package.py` runs as its step 5 (streamseg_train/retrieval_index.py), for
when only retrieval changed: minutes instead of the whole build. The stills come from the
same cache and seeds as the build (rendered when missing).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from build_package import EXPORT_SIZE, MEAN, PRESETS, STD  # noqa: E402
from streamseg_train import data as D  # noqa: E402
from streamseg_train.model import load_base  # noqa: E402
from streamseg_train.retrieval_index import fit_retrieval  # noqa: E402
from streamseg_train.safetensors_io import load_file, save_file, read_metadata  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", required=True, help="package directory made by build_package.py")
    ap.add_argument("--data-dir", default=os.path.join(HERE, "data"), help="where rendered stills are cached")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    pkg = os.path.abspath(args.package)
    weights_path = os.path.join(pkg, "base_model.safetensors")
    if not os.path.exists(weights_path):
        ap.error(f"{pkg} has no base_model.safetensors: refit packages made by build_package.py")
    meta = read_metadata(weights_path)
    preset, seed = meta.get("preset", "full"), int(meta.get("seed", "0"))
    cfg = PRESETS[preset]
    torch.set_num_threads(args.threads)
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

    log(f"package {pkg}: preset {preset}, seed {seed}")
    stills = D.training_stills(args.data_dir, cfg["sources"], cfg["n_clear"], cfg["n_cond"], seed, log)
    net = load_base(weights_path)
    # written beside the package, then swapped in file by file once everything is fitted
    staging = tempfile.mkdtemp(prefix="refit_", dir=os.path.dirname(pkg))
    try:
        retrieval = fit_retrieval(net, stills, cfg["emb_per_cond"], seed, MEAN, STD, staging, EXPORT_SIZE, log)
        weights = {k: v for k, v in load_file(weights_path).items() if not k.startswith("embedder.")}
        weights.update(retrieval["constants"])
        save_file(weights, os.path.join(staging, "base_model.safetensors"), metadata=meta)
        with open(os.path.join(pkg, "model.json")) as f:
            manifest = json.load(f)
        manifest["embedder"] = retrieval["manifest"]
        with open(os.path.join(staging, "model.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        for rel in ("embedder.onnx", os.path.join("adapters", "index.json"), "base_model.safetensors", "model.json"):
            os.replace(os.path.join(staging, rel), os.path.join(pkg, rel))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"[refit] {pkg}: embedder.onnx, adapters/index.json, model.json, base_model.safetensors rewritten")


if __name__ == "__main__":
    main()
