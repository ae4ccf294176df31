import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { argmaxMasks, classMapMasks } from '../../src/workers/segmentation/argmax.js';
import { CLASS_MAP_OUTPUT, withClassMapHead } from '../../src/workers/segmentation/class-map-head.js';
import {
  FLOAT,
  GRAPH_INPUT,
  GRAPH_OUTPUT,
  MODEL_GRAPH,
  MODEL_IR_VERSION,
  MODEL_OPSET_IMPORT,
  OPSET_DOMAIN,
  OPSET_VERSION,
  concatBytes,
  lenRecord,
  nodeRecord,
  stringRecord,
  tensorValueInfo,
  varintRecord,
} from '../../src/workers/segmentation/onnx-wire.js';
import { SegmentationEngine, engineSpecOf } from '../../src/workers/segmentation/segmentation-engine.js';
import { REPO_ROOT } from '../helpers/cli.js';

const options = { graphOptimizationLevel: 'all' as const, executionProviders: ['cpu'] };

/** A model whose output `logits` is its input `x` ([N, C, H, W] float), so a test chooses the logits. */
function identityModel(outputName = 'logits'): Uint8Array {
  const opset = concatBytes([stringRecord(OPSET_DOMAIN, ''), varintRecord(OPSET_VERSION, 13)]);
  const graph = concatBytes([
    nodeRecord('Identity', ['x'], outputName),
    lenRecord(GRAPH_INPUT, tensorValueInfo('x', FLOAT, ['n', 'c', 'h', 'w'])),
    lenRecord(GRAPH_OUTPUT, tensorValueInfo(outputName, FLOAT, ['n', 'c', 'h', 'w'])),
  ]);
  return concatBytes([varintRecord(MODEL_IR_VERSION, 8), lenRecord(MODEL_OPSET_IMPORT, opset), lenRecord(MODEL_GRAPH, graph)]);
}

function headed(model: Uint8Array, output = 'logits'): Uint8Array {
  const result = withClassMapHead(model, output);
  if ('reason' in result) throw new Error(result.reason);
  return result.bytes;
}

describe('the class-map head', () => {
  it('gives the masks argmaxMasks gives, the first channel winning a tie, and maps a class subset back', async () => {
    const session = await ort.InferenceSession.create(headed(identityModel()), options);
    const [n, c, h, w] = [2, 5, 3, 4];
    // Small integers: many pixels have two or more channels at the same maximum.
    const logits = Float32Array.from({ length: n * c * h * w }, (_, i) => ((i * 7 + Math.floor(i / 3)) % 3) - 1);
    const { [CLASS_MAP_OUTPUT]: classMap } = await session.run({ x: new ort.Tensor('float32', logits, [n, c, h, w]) }, [CLASS_MAP_OUTPUT]);
    expect(classMap!.type).toBe('uint8');
    expect(classMap!.dims).toEqual([n, h, w]);
    for (const classOf of [Uint8Array.from([0, 1, 2, 3, 4]), Uint8Array.from([6, 2, 0, 7, 1])]) {
      const expected = argmaxMasks(logits, [n, c, h, w], classOf).map((mask) => [...mask]);
      const actual = classMapMasks(classMap!.data as Uint8Array, classMap!.dims, [n, h, w], classOf).map((mask) => [...mask]);
      expect(actual).toEqual(expected);
    }
    // The tie rule is exercised: some pixel has its maximum on more than one channel.
    const plane = h * w;
    const ties = Array.from({ length: n * plane }, (_, i) => {
      const [f, p] = [Math.floor(i / plane), i % plane];
      const values = Array.from({ length: c }, (_, k) => logits[f * c * plane + k * plane + p]!);
      return values.filter((v) => v === Math.max(...values)).length > 1;
    });
    expect(ties.some(Boolean)).toBe(true);
    await session.release();
  });

  it('rejects a class map of another shape than the batch', () => {
    expect(() => classMapMasks(new Uint8Array(12), [1, 3, 4], [2, 3, 4], Uint8Array.from([0, 1]))).toThrow(/\[1,3,4\].*\[2,3,4\]/);
  });

  it('is added to models/default, whose engine then segments exactly as from the logits', async () => {
    const pkg = await loadModelPackage(path.join(REPO_ROOT, 'models/default'));
    const bytes = await readFile(pkg.modelPath);
    const plain = await ort.InferenceSession.create(bytes, options);
    const withHead = await ort.InferenceSession.create(headed(bytes, pkg.manifest.output.name), options);
    expect(withHead.outputNames).toEqual([pkg.manifest.output.name, CLASS_MAP_OUTPUT]);
    const spec = engineSpecOf(pkg.manifest);
    const { classes, classEmbeddings, lora, input } = pkg.manifest;
    const feeds: Record<string, ort.Tensor> = {
      [classEmbeddings.input]: new ort.Tensor('float32', Float32Array.from(classes.flatMap((c) => c.embedding)), [classes.length, classEmbeddings.dim]),
    };
    for (const t of lora.targets) {
      feeds[t.inputA] = new ort.Tensor('float32', new Float32Array(t.in), [1, t.in]);
      feeds[t.inputB] = new ort.Tensor('float32', new Float32Array(t.out), [t.out, 1]);
    }
    const size = { width: input.width, height: input.height };
    const frames = Uint8Array.from({ length: 3 * size.width * size.height * 3 }, (_, i) => (i * 37 + (i >> 9)) % 256);
    const classOf = Uint8Array.from(classes, (_, k) => k);
    const reference = await new SegmentationEngine(plain, spec).segment(frames.slice(), 3, size, feeds, classOf, { confidence: true });
    const engine = new SegmentationEngine(withHead, { ...spec, classMapOutput: CLASS_MAP_OUTPUT });
    const result = await engine.segment(frames.slice(), 3, size, feeds, classOf, { confidence: true });
    expect(new Set(reference.masks).size).toBeGreaterThan(1);
    expect([...result.masks]).toEqual([...reference.masks]);
    expect([...result.confidence!]).toEqual([...reference.confidence!]);
    const withoutConfidence = await engine.segment(frames.slice(), 3, size, feeds, classOf);
    expect(withoutConfidence.confidence).toBeUndefined();
    expect([...withoutConfidence.masks]).toEqual([...reference.masks]);
    await Promise.all([plain.release(), withHead.release()]);
  });

  it('says why when it cannot be added', () => {
    expect(withClassMapHead(identityModel(), 'scores')).toEqual({ reason: 'the graph has no output "scores"' });
    expect(withClassMapHead(identityModel(CLASS_MAP_OUTPUT), CLASS_MAP_OUTPUT)).toEqual({
      reason: `the graph already has a tensor named "${CLASS_MAP_OUTPUT}"`,
    });
    expect(withClassMapHead(Uint8Array.from([0x3a, 0x40, 0x01]), 'logits')).toEqual({ reason: expect.stringMatching(/malformed|truncated/) });
  });
});
