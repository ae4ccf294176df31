import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelPackage, type LoraTarget, type ModelPackage } from '../../src/shared/model-manifest.js';
import { argmaxMasks } from '../../src/workers/segmentation/argmax.js';
import { withClassMapHead } from '../../src/workers/segmentation/class-map-head.js';
import { loadFoldedGraph } from '../../src/workers/segmentation/folded-graph.js';
import { FoldedLoraFeeds } from '../../src/workers/segmentation/folded-lora-feeds.js';
import { foldLoraBranches, type FoldedLoraModel, type FoldedTarget } from '../../src/workers/segmentation/lora-fold.js';
import { OnnxSessionRepository } from '../../src/workers/segmentation/onnx-session.repository.js';
import { Preprocessor } from '../../src/workers/segmentation/preprocess.js';
import { ThreadFeedLedger } from '../../src/workers/segmentation/thread-feed-ledger.js';
import { makeTestModel } from '../fixtures/test-model.js';
import { REPO_ROOT } from '../helpers/cli.js';

/** Deterministic values in [-scale, scale]. */
const wave = (length: number, phase: number, scale: number) => Float32Array.from({ length }, (_, i) => scale * Math.sin(i * 1.3 + phase));

function loraFeeds(targets: readonly LoraTarget[], rank: number, phase: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  targets.forEach((t, i) => {
    feeds[t.inputA] = new ort.Tensor('float32', wave(rank * t.in, phase + i, 0.1), [rank, t.in]);
    feeds[t.inputB] = new ort.Tensor('float32', wave(t.out * rank, phase + i + 0.5, 0.1), [t.out, rank]);
  });
  return feeds;
}

function folded(model: Uint8Array, targets: readonly LoraTarget[]): FoldedLoraModel {
  const result = foldLoraBranches(model, targets);
  if ('reason' in result) throw new Error(result.reason);
  return result.folded;
}

describe('folding LoRA branches into the weights', () => {
  let pkg: ModelPackage;
  let bytes: Buffer;

  beforeAll(async () => {
    pkg = await loadModelPackage(path.join(REPO_ROOT, 'models/default'));
    bytes = await readFile(pkg.modelPath);
  });

  it('rewrites models/default so every LoRA input becomes the weight it was added to, with the same logits', async () => {
    const { manifest } = pkg;
    const model = folded(bytes, manifest.lora.targets);
    expect(model.targets.map((t) => t.inputA)).toEqual(manifest.lora.targets.map((t) => t.inputA));
    // The 1x1 convolutions keep [out, in, 1, 1]; the attention's Linear layers are x·W with W [in, out].
    expect(new Set(model.targets.map((t) => t.layout))).toEqual(new Set(['rows', 'columns']));
    for (const t of model.targets) expect(t.dims).toEqual(t.layout === 'rows' ? [t.out, t.in, 1, 1] : [t.in, t.out]);
    expect(model.bytes.length).toBeLessThan(bytes.length);

    const options = { graphOptimizationLevel: 'all' as const, executionProviders: ['cpu'] };
    const original = await ort.InferenceSession.create(bytes, options);
    const rewritten = await ort.InferenceSession.create(model.bytes, options);
    expect(rewritten.inputNames.filter((name) => name.includes('lora'))).toEqual([]);
    expect(rewritten.inputNames).toEqual(expect.arrayContaining(model.targets.map((t) => t.weightInput)));

    const { width, height } = manifest.input;
    const common = {
      [manifest.input.name]: new ort.Tensor('float32', wave(2 * 3 * width * height, 0, 2), [2, 3, height, width]),
      [manifest.classEmbeddings.input]: new ort.Tensor('float32', Float32Array.from(manifest.classes.flatMap((c) => c.embedding)), [
        manifest.classes.length,
        manifest.classEmbeddings.dim,
      ]),
    };
    const fold = await FoldedLoraFeeds.create(model);
    for (const lora of [loraFeeds(manifest.lora.targets, 3, 0), loraFeeds(manifest.lora.targets, 1, 2)]) {
      const want = (await original.run({ ...common, ...lora }))[manifest.output.name]!.data as Float32Array;
      const got = (await rewritten.run(await fold.convert({ ...common, ...lora })))[manifest.output.name]!.data as Float32Array;
      let worst = 0;
      let changed = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i]! - got[i]!));
      // The adapter must matter, or agreeing would prove nothing.
      const base = (await rewritten.run(await fold.convert({ ...common, ...loraFeeds(manifest.lora.targets, 1, 0), ...zeroB(manifest.lora.targets) })))[
        manifest.output.name
      ]!.data as Float32Array;
      for (let i = 0; i < want.length; i++) changed = Math.max(changed, Math.abs(want[i]! - base[i]!));
      expect(worst).toBeLessThan(1e-3);
      expect(changed).toBeGreaterThan(1e-2);
    }
    await Promise.all([original.release(), rewritten.release(), fold.release()]);
  });

  it('adds B·A to each layout as the graph did: rows of a Conv weight, columns of a MatMul one', async () => {
    const base = Float32Array.from({ length: 6 }, (_, i) => i);
    const A = new ort.Tensor('float32', Float32Array.from([1, 2, 3, -1, 0, 1]), [2, 3]); // [rank 2, in 3]
    const B = new ort.Tensor('float32', Float32Array.from([1, 0, 2, -1]), [2, 2]); // [out 2, rank 2]
    // ΔW = B·A = [[1, 2, 3], [3, 4, 5]] as [out, in].
    const conv: FoldedTarget = { inputA: 'a', inputB: 'b', weightInput: 'conv.w', dims: [2, 3, 1, 1], layout: 'rows', in: 3, out: 2, base };
    // W is [in 3, out 2]: W[i][o] += ΔW[o][i].
    const matmul: FoldedTarget = { inputA: 'c', inputB: 'd', weightInput: 'mm.w', dims: [3, 2], layout: 'columns', in: 3, out: 2, base };
    const feeds = await FoldedLoraFeeds.create({ bytes: new Uint8Array(), targets: [conv, matmul] });
    const folded = await feeds.convert({ a: A, b: B, c: A, d: B });
    expect([...(folded['conv.w']!.data as Float32Array)]).toEqual([0 + 1, 1 + 2, 2 + 3, 3 + 3, 4 + 4, 5 + 5]);
    expect(folded['conv.w']!.dims).toEqual([2, 3, 1, 1]);
    expect([...(folded['mm.w']!.data as Float32Array)]).toEqual([0 + 1, 1 + 3, 2 + 2, 3 + 4, 4 + 3, 5 + 5]);
    // A pair whose rank does not line up is ORT's error, and no weights are kept for it.
    await expect(feeds.convert({ a: A, b: new ort.Tensor('float32', new Float32Array(6), [2, 3]), c: A, d: B })).rejects.toThrow();
    await feeds.release();
  });

  it('gives a reason instead of a graph when the branches are not where the manifest says', () => {
    const targets = pkg.manifest.lora.targets;
    const wrongSize = targets.map((t, i) => (i === 0 ? { ...t, in: t.in + 1 } : t));
    expect(foldLoraBranches(bytes, wrongSize)).toEqual({
      reason: expect.stringMatching(/enc\.s1\.b0\.pw: Conv weight .* is 48x48x1x1, not 48 outputs of 49 inputs/),
    });
    const missing = [{ ...targets[0]!, inputA: 'no.such.lora_A', inputB: 'no.such.lora_B' }];
    expect(foldLoraBranches(bytes, missing)).toEqual({ reason: expect.stringMatching(/joins the network at 0 Add nodes/) });
    expect(foldLoraBranches(bytes.subarray(0, 1000), targets)).toEqual({ reason: expect.any(String) });
    expect(foldLoraBranches(bytes, [])).toEqual({ reason: 'the manifest has no LoRA targets' });
  });
});

function zeroB(targets: readonly LoraTarget[]): Record<string, ort.Tensor> {
  return Object.fromEntries(targets.map((t) => [t.inputB, new ort.Tensor('float32', new Float32Array(t.out), [t.out, 1])]));
}

describe('FoldedLoraFeeds', () => {
  const target: FoldedTarget = {
    inputA: 'a',
    inputB: 'b',
    weightInput: 'w',
    dims: [2, 2, 1, 1],
    layout: 'rows',
    in: 2,
    out: 2,
    base: Float32Array.from([1, 2, 3, 4]),
  };
  const pair = (a: number[], b: number[]) => ({
    a: new ort.Tensor('float32', Float32Array.from(a), [1, 2]),
    b: new ort.Tensor('float32', Float32Array.from(b), [2, 1]),
  });

  it('folds each merge once, passes other feeds through, and feeds W itself for zero LoRA', async () => {
    const feeds = await FoldedLoraFeeds.create({ bytes: new Uint8Array(), targets: [target] }, 2);
    const classes = new ort.Tensor('float32', new Float32Array(4), [2, 2]);
    const merge = pair([1, 1], [1, 0]);
    const first = await feeds.convert({ ...merge, classes });
    expect(Object.keys(first).sort()).toEqual(['classes', 'w']);
    expect(first.classes).toBe(classes);
    expect([...(first.w!.data as Float32Array)]).toEqual([2, 3, 3, 4]);
    expect((await feeds.convert({ ...merge, classes })).w).toBe(first.w);

    const zero = await feeds.convert(pair([5, 5], [0, 0]));
    expect(zero.w!.data).toBe(target.base);
    // Capacity 2: a third merge pushes out the least recently used (the first), which is then folded anew.
    await feeds.convert(pair([0, 1], [1, 1]));
    const again = await feeds.convert({ ...merge, classes });
    expect(again.w).not.toBe(first.w);
    expect([...(again.w!.data as Float32Array)]).toEqual([2, 3, 3, 4]);
    await expect(feeds.convert({ a: merge.a })).rejects.toThrow(/no float32 feed "b"/);
    await feeds.release();
  });
});

describe('ThreadFeedLedger', () => {
  const tensor = (bytes: number) => new ort.Tensor('float32', new Float32Array(bytes / 4), [bytes / 4]);

  it('sends a tensor once, then its id, and has the thread forget the least recently used beyond its budget', () => {
    const ledger = new ThreadFeedLedger(1000);
    const [a, b, c] = [tensor(400), tensor(400), tensor(400)];
    const first = ledger.wire({ x: a, y: b });
    expect('data' in first.feeds.x! && 'data' in first.feeds.y!).toBe(true);
    expect(first.forget).toEqual([]);
    const again = ledger.wire({ x: a });
    expect(again.feeds.x).toEqual({ id: first.feeds.x!.id });
    // 1200 bytes held: b (least recently used, not in this run) goes.
    const third = ledger.wire({ z: c });
    expect(third.forget).toEqual([first.feeds.y!.id]);
    const resent = ledger.wire({ y: b });
    expect('data' in resent.feeds.y!).toBe(true);
    expect(resent.forget).toEqual([first.feeds.x!.id]);
    // A run's own feeds stay even when they alone exceed the budget; everything else goes.
    const big = ledger.wire({ p: tensor(800), q: tensor(800) });
    expect(Object.values(big.feeds).every((w) => 'data' in w)).toBe(true);
    expect(big.forget).toEqual([third.feeds.z!.id, first.feeds.y!.id]);
  });
});

describe('the worker with a folded network', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-fold-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const request = (pkg: ModelPackage, lora: Record<string, ort.Tensor>) => ({
    frames: [0, 1, 2].map((seed) => Uint8Array.from({ length: 16 * 16 * 3 }, (_, i) => (i * 37 + seed * 101) % 256)),
    size: { width: 16, height: 16 },
    feeds: {
      class_embeddings: new ort.Tensor('float32', Float32Array.from(pkg.manifest.classes.flatMap((c) => c.embedding)), [pkg.manifest.classes.length, 8]),
      ...lora,
    },
    classOf: Uint8Array.from(pkg.manifest.classes.map((_, i) => i)),
  });

  it('keeps the branches of a graph whose fold does not compute the same, and says why', async () => {
    const pkg = await makeTestModel(path.join(dir, 'scaled'), 16, 2);
    const session = await ort.InferenceSession.create(pkg.modelPath);
    const lines: string[] = [];
    const capture = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    expect(await loadFoldedGraph(pkg, await readFile(pkg.modelPath), session, {}, capture)).toBeUndefined();
    expect(lines.join('\n')).toMatch(/LoRA branches kept in the network: the folded graph gave other logits/);
    await session.release();
  });

  it('loads a network whose weights are stored beside model.onnx from its file, on its threads, with the same masks', async () => {
    const pkg = await makeTestModel(path.join(dir, 'external'), 16);
    const inline = await ort.InferenceSession.create(pkg.modelPath);
    // python3-onnx moves every initializer into model.onnx.data next to the graph.
    await promisify(execFile)('/usr/bin/python3', [
      '-c',
      'import onnx, sys; onnx.save_model(onnx.load(sys.argv[1]), sys.argv[1], save_as_external_data=True, location="model.onnx.data", size_threshold=0)',
      pkg.modelPath,
    ]);
    expect(withClassMapHead(await readFile(pkg.modelPath), pkg.manifest.output.name)).toEqual({ reason: 'its weights are stored outside the model file' });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const repository = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: 1, threads: 2, logger });
    try {
      const { width, height } = pkg.manifest.input;
      const frames = [0, 1].map((k) => Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 31 + k * 97) % 256));
      const classOf = Uint8Array.from(pkg.manifest.classes.map((_, i) => i));
      const feeds = {
        [pkg.manifest.classEmbeddings.input]: new ort.Tensor('float32', Float32Array.from(pkg.manifest.classes.flatMap((c) => c.embedding)), [
          pkg.manifest.classes.length,
          pkg.manifest.classEmbeddings.dim,
        ]),
        ...loraFeeds(pkg.manifest.lora.targets, 1, 0),
      };
      const { masks } = await repository.segment({ frames, size: { width, height }, feeds, classOf });
      const pre = new Preprocessor({ ...pkg.manifest.input, width, height });
      const batch = new Float32Array(2 * pre.frameFloats);
      frames.forEach((frame, slot) => pre.write(frame, batch, slot));
      const logits = (await inline.run({ ...feeds, [pkg.manifest.input.name]: new ort.Tensor('float32', batch, [2, 3, height, width]) }))[
        pkg.manifest.output.name
      ]!;
      const expected = argmaxMasks(logits.data as Float32Array, logits.dims, classOf);
      expect(masks.map((m) => [...m])).toEqual(expected.map((m) => [...m]));
      expect(lines.join('\n')).toMatch(/class masks reduced from the logits \(no class-map output\)/);
    } finally {
      await repository.release();
      await inline.release();
    }
  });

  it('segments as the package graph does, on its threads, for the base model and for an adapter', async () => {
    const pkg = await makeTestModel(path.join(dir, 'plain'), 16);
    const lines: string[] = [];
    const capture = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const threaded = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: 1, threads: 2, logger: capture });
    expect(lines.join('\n')).toMatch(/"loraFolded":true/);
    const reference = await ort.InferenceSession.create(pkg.modelPath);
    const adapter = {
      'stem.proj.lora_A': new ort.Tensor('float32', Float32Array.from([0.5, -0.5, 0.25]), [1, 3]),
      'stem.proj.lora_B': new ort.Tensor('float32', wave(8, 1, 0.8), [8, 1]),
    };
    const none = {
      'stem.proj.lora_A': new ort.Tensor('float32', new Float32Array(3), [1, 3]),
      'stem.proj.lora_B': new ort.Tensor('float32', new Float32Array(8), [8, 1]),
    };
    for (const lora of [none, adapter, none, adapter]) {
      const got = await threaded.segment(request(pkg, lora));
      const expected = await referenceMasks(reference, pkg, request(pkg, lora));
      expect(got.masks.map((m) => [...m])).toEqual(expected);
    }
    await Promise.all([threaded.release(), reference.release()]);
  });
});

/** Masks straight from the package graph, preprocessed and reduced as the engine does. */
async function referenceMasks(
  session: ort.InferenceSession,
  pkg: ModelPackage,
  request: { frames: Uint8Array[]; size: { width: number; height: number }; feeds: Record<string, ort.Tensor>; classOf: Uint8Array },
): Promise<number[][]> {
  const { width, height } = request.size;
  const pre = new Preprocessor({ ...pkg.manifest.input, width, height });
  const image = new Float32Array(request.frames.length * pre.frameFloats);
  request.frames.forEach((frame, slot) => pre.write(frame, image, slot));
  const logits = (
    await session.run({ ...request.feeds, [pkg.manifest.input.name]: new ort.Tensor('float32', image, [request.frames.length, 3, height, width]) })
  )[pkg.manifest.output.name]!;
  return argmaxMasks(logits.data as Float32Array, logits.dims, request.classOf).map((mask) => [...mask]);
}
