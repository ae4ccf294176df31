/**
 * The sequential loop of `npm run bench` (e) in a node process of its own, as a user's script
 * runs: node's default V8 settings, not those a pipeline process tunes for itself
 * (src/shared/pipeline-heap.ts), which are process-wide and would otherwise reach the loop
 * running in the bench's process after a pipeline round.
 *
 *   node --import tsx bench/sequential-loop-process.ts '<SequentialSpec as JSON>'
 *
 * Settings come from the environment as for the bench (the worker's session options). Prints
 * one JSON line: the loop's result and its CPU seconds (this process, and its ffmpeg children).
 */
import ort from 'onnxruntime-node';
import { loadConfig } from '../src/shared/config.js';
import { loadModelPackage } from '../src/shared/model-manifest.js';
import { planModelInput } from '../src/shared/model-input-plan.js';
import { segmentationSessionOptions } from '../src/workers/segmentation/onnx-session.repository.js';
import type { EncoderPreset } from '../src/workers/sink/video-encoder.repository.js';
import { cpuSeconds, mergedFeeds, runRaw } from './raw-ort.js';
import { runSequentialLoop, type SequentialResult } from './sequential-loop.js';

export interface SequentialSpec {
  video: string;
  width: number;
  height: number;
  fps: number;
  adapters: { name: string; weight: number }[];
  batchFrames: number;
  preset: EncoderPreset;
  overlayAlpha: number;
  outDir: string;
}

export interface SequentialProcessResult {
  loop: SequentialResult;
  cpu: { self: number; children: number };
}

const spec = JSON.parse(process.argv[2] ?? '') as SequentialSpec;
const config = loadConfig({ logLevel: 'warn' });
const pkg = await loadModelPackage(config.modelDir);
const session = await ort.InferenceSession.create(pkg.modelPath, { ...segmentationSessionOptions(config), executionProviders: [config.executionProvider] });
const lora = await mergedFeeds(config, pkg, spec.adapters);
// Warm, as the bench's raw session is before the loop: ORT sizes its arena on the first runs.
await runRaw(session, pkg, lora.feeds, {
  batchFrames: spec.batchFrames,
  size: planModelInput(pkg.manifest.input, spec.width, spec.height),
  minBatches: 3,
  minSeconds: 0,
});
const before = await cpuSeconds();
const loop = await runSequentialLoop({ ...spec, pkg, session, lora: lora.feeds, adapters: lora.adapters });
const after = await cpuSeconds();
await session.release();
const result: SequentialProcessResult = { loop, cpu: { self: after.self - before.self, children: after.children - before.children } };
process.stdout.write(`${JSON.stringify(result)}\n`);
