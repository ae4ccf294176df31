import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import pino from 'pino';
import { loadModelPackage, type ModelPackage } from '../../src/shared/model-manifest.js';
import { loadFoldedGraph, type FoldedGraph } from '../../src/workers/segmentation/folded-graph.js';
import { REPO_ROOT } from './cli.js';
import { cpuSessionOptions, wave } from './onnx-graph.js';

export interface DefaultModel {
  pkg: ModelPackage;
  /** Its model.onnx, as read from the file. */
  bytes: Uint8Array;
}

export async function loadDefaultModel(): Promise<DefaultModel> {
  const pkg = await loadModelPackage(path.join(REPO_ROOT, 'models/default'));
  return { pkg, bytes: new Uint8Array(await readFile(pkg.modelPath)) };
}

/**
 * The largest |Δlogit| between models/default's package graph and `rewritten` (a graph with the
 * same inputs), relative to the largest logit: two frames at 224x128, rank-1 zero LoRA feeds.
 */
export async function logitDifference({ pkg, bytes }: DefaultModel, rewritten: Uint8Array): Promise<number> {
  const { input, output, classes, classEmbeddings } = pkg.manifest;
  const [width, height] = [224, 128];
  const feeds: Record<string, ort.Tensor> = {
    [input.name]: new ort.Tensor('float32', wave(2 * 3 * width * height, 2), [2, 3, height, width]),
    [classEmbeddings.input]: new ort.Tensor('float32', Float32Array.from(classes.flatMap((c) => c.embedding)), [classes.length, classEmbeddings.dim]),
  };
  for (const target of pkg.manifest.lora.targets) {
    feeds[target.inputA] = new ort.Tensor('float32', new Float32Array(target.in), [1, target.in]);
    feeds[target.inputB] = new ort.Tensor('float32', new Float32Array(target.out), [target.out, 1]);
  }
  const sessions = await Promise.all([bytes, rewritten].map((model) => ort.InferenceSession.create(model, cpuSessionOptions)));
  try {
    const [expected, actual] = await Promise.all(sessions.map(async (session) => (await session.run(feeds))[output.name]!));
    if (expected!.dims.join() !== actual!.dims.join()) throw new Error(`logits ${actual!.dims.join('x')} instead of ${expected!.dims.join('x')}`);
    const [e, a] = [expected!.data as Float32Array, actual!.data as Float32Array];
    const largest = e.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    return e.reduce((m, x, i) => Math.max(m, Math.abs(x - a[i]!)), 0) / largest;
  } finally {
    await Promise.all(sessions.map((session) => session.release()));
  }
}

/** The worker's folded network of models/default, and the log lines loading it wrote. */
export async function loadDefaultFolded({
  pkg,
  bytes,
}: DefaultModel): Promise<{ folded: FoldedGraph | undefined; logLines: string[]; release: () => Promise<void> }> {
  const logLines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(line) });
  const plain = await ort.InferenceSession.create(bytes, cpuSessionOptions);
  const folded = await loadFoldedGraph(pkg, bytes, plain, cpuSessionOptions, logger);
  const release = async () => {
    await Promise.all([plain.release(), folded?.session.release(), folded?.feeds.release()]);
  };
  return { folded, logLines, release };
}
