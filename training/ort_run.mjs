// Run an ONNX model with onnxruntime-node on raw little-endian float32 inputs.
//
//   node training/ort_run.mjs spec.json
//
// spec.json: {"model": "model.onnx", "outDir": "dir",
//             "inputs": {"image": {"file": "image.f32", "dims": [1,3,160,160]}, ...},
//             "chunk": {"input": "image", "size": 32}}   // optional batching along dim 0
// Writes <outDir>/<output>.f32 (raw float32) and <outDir>/outputs.json
// ({"<output>": {"file": ..., "dims": [...]}}). Empty tensors (a zero dim) are allowed.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'package.json'));
const ort = require('onnxruntime-node');

function readF32(file) {
  const buf = readFileSync(file);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const base = dirname(resolve(process.argv[2]));
const abs = (p) => resolve(base, p);
const session = await ort.InferenceSession.create(abs(spec.model), {
  graphOptimizationLevel: 'all',
  intraOpNumThreads: spec.threads ?? 2,
  // as the workers do (src/ segmentationSessionOptions): idle intra-op threads
  // sleep instead of busy-waiting, which matters on a shared 2-core machine
  extra: { session: { intra_op: { allow_spinning: '0' } } },
});
const feeds = {};
const raw = {};
for (const [name, inp] of Object.entries(spec.inputs)) {
  raw[name] = { data: readF32(abs(inp.file)), dims: inp.dims };
}
const chunkInput = spec.chunk?.input;
const total = chunkInput ? raw[chunkInput].dims[0] : 1;
const size = chunkInput ? spec.chunk.size : 1;
const outs = {};
for (let start = 0; start < total; start += size) {
  for (const [name, r] of Object.entries(raw)) {
    if (name === chunkInput) {
      const n = Math.min(size, total - start);
      const per = r.dims.slice(1).reduce((a, b) => a * b, 1);
      feeds[name] = new ort.Tensor('float32', r.data.subarray(start * per, (start + n) * per), [n, ...r.dims.slice(1)]);
    } else {
      feeds[name] = new ort.Tensor('float32', r.data, r.dims);
    }
  }
  const res = await session.run(feeds);
  for (const [name, t] of Object.entries(res)) {
    (outs[name] ??= []).push(t);
  }
}
mkdirSync(abs(spec.outDir), { recursive: true });
const meta = {};
for (const [name, parts] of Object.entries(outs)) {
  const dims = [...parts[0].dims];
  dims[0] = parts.reduce((a, t) => a + t.dims[0], 0);
  if (!chunkInput) dims[0] = parts[0].dims[0];
  const len = parts.reduce((a, t) => a + t.data.length, 0);
  const all = new Float32Array(len);
  let off = 0;
  for (const t of parts) {
    all.set(t.data, off);
    off += t.data.length;
  }
  const file = `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.f32`;
  writeFileSync(join(abs(spec.outDir), file), Buffer.from(all.buffer));
  meta[name] = { file, dims };
}
writeFileSync(join(abs(spec.outDir), 'outputs.json'), JSON.stringify(meta));
