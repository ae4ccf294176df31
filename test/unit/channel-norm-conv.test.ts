import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { withConvChannelNorms } from '../../src/workers/segmentation/channel-norm-conv.js';
import { loadFoldedGraph } from '../../src/workers/segmentation/folded-graph.js';
import {
  FLOAT,
  GRAPH_INPUT,
  GRAPH_NODE,
  GRAPH_OUTPUT,
  MODEL_GRAPH,
  MODEL_IR_VERSION,
  MODEL_OPSET_IMPORT,
  NODE_OP_TYPE,
  OPSET_DOMAIN,
  OPSET_VERSION,
  concatBytes,
  intAttributeRecord,
  intsAttributeRecord,
  lenRecord,
  nodeRecord,
  readFields,
  stringRecord,
  tensorValueInfo,
  textOf,
  varintRecord,
} from '../../src/workers/segmentation/onnx-wire.js';
import { REPO_ROOT } from '../helpers/cli.js';

const options = { graphOptimizationLevel: 'all' as const, executionProviders: ['cpu'] };

interface NormModelOptions {
  axes?: number[];
  keepdims?: number;
  inputName?: string;
  irVersion?: number;
}

/** x (any shape) → ReduceL2(axes, keepdims) → Relu → `out`, opset 17. */
function normModel({ axes = [1], keepdims, inputName = 'x', irVersion = 8 }: NormModelOptions = {}): Uint8Array {
  const attributes = [intsAttributeRecord('axes', axes), ...(keepdims === undefined ? [] : [intAttributeRecord('keepdims', keepdims)])];
  const opset = concatBytes([stringRecord(OPSET_DOMAIN, ''), varintRecord(OPSET_VERSION, 17)]);
  const graph = concatBytes([
    nodeRecord('ReduceL2', [inputName], 'norm', attributes),
    nodeRecord('Relu', ['norm'], 'out'),
    lenRecord(GRAPH_INPUT, tensorValueInfo(inputName, FLOAT)),
    lenRecord(GRAPH_OUTPUT, tensorValueInfo('out', FLOAT)),
  ]);
  return concatBytes([varintRecord(MODEL_IR_VERSION, irVersion), lenRecord(MODEL_OPSET_IMPORT, opset), lenRecord(MODEL_GRAPH, graph)]);
}

function opTypes(model: Uint8Array): string[] {
  const graph = readFields(model).find((f) => f.field === MODEL_GRAPH)!.payload;
  return readFields(graph)
    .filter((f) => f.field === GRAPH_NODE)
    .map((f) => textOf(readFields(f.payload).find((part) => part.field === NODE_OP_TYPE)!.payload));
}

const wave = (length: number, phase: number) => Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + phase) * (1 + (i % 5)));

describe('channel L2 norms as a 1x1 Conv', () => {
  it.each([
    { dims: [2, 5, 3, 4], keepdims: undefined, expected: [2, 1, 3, 4] },
    { dims: [2, 5, 3, 4], keepdims: 0, expected: [2, 3, 4] },
    { dims: [3, 6], keepdims: 1, expected: [3, 1] },
    { dims: [2, 4, 7], keepdims: 1, expected: [2, 1, 7] },
  ])('replaces ReduceL2 over axis 1 of $dims (keepdims $keepdims) and computes what it computed', async ({ dims, keepdims, expected: expectedDims }) => {
    const model = normModel({ keepdims });
    const result = withConvChannelNorms(model);
    expect(result.rewritten).toBe(1);
    expect(opTypes(result.bytes)).not.toContain('ReduceL2');
    expect(opTypes(result.bytes)).toContain('Conv');
    const feeds = {
      x: new ort.Tensor(
        'float32',
        wave(
          dims.reduce((a, b) => a * b, 1),
          0.5,
        ),
        dims,
      ),
    };
    const [before, after] = await Promise.all([model, result.bytes].map((bytes) => ort.InferenceSession.create(bytes, options)));
    const expected = (await before!.run(feeds)).out!;
    const actual = (await after!.run(feeds)).out!;
    expect(expected.dims).toEqual(expectedDims);
    expect(actual.dims).toEqual(expectedDims);
    const [e, a] = [expected.data as Float32Array, actual.data as Float32Array];
    expect(e.every((x) => x > 0)).toBe(true);
    for (let i = 0; i < e.length; i++) expect(a[i]).toBeCloseTo(e[i]!, 5);
    await Promise.all([before!.release(), after!.release()]);
  });

  it('leaves other axes, old IR versions, a graph that already uses its names, and bytes that do not parse as they are', () => {
    for (const model of [
      normModel({ axes: [2] }),
      normModel({ axes: [1, 2] }),
      normModel({ irVersion: 3 }),
      normModel({ inputName: 'streamseg_channel_norm_input' }),
      Uint8Array.from([0x0a, 0xff]),
    ]) {
      expect(withConvChannelNorms(model)).toEqual({ bytes: model, rewritten: 0 });
    }
  });

  it('rewrites models/default (features and class embeddings): logits within 1e-5, and the folded network passes its check', async () => {
    const pkg = await loadModelPackage(path.join(REPO_ROOT, 'models/default'));
    const bytes = await readFile(pkg.modelPath);
    const result = withConvChannelNorms(bytes);
    expect(result.rewritten).toBe(2);
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
    const [plain, normed] = await Promise.all([bytes, result.bytes].map((model) => ort.InferenceSession.create(model, options)));
    const expected = (await plain!.run(feeds))[output.name]!;
    const actual = (await normed!.run(feeds))[output.name]!;
    expect(actual.dims).toEqual(expected.dims);
    const [e, a] = [expected.data as Float32Array, actual.data as Float32Array];
    const largest = e.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const worst = e.reduce((m, x, i) => Math.max(m, Math.abs(x - a[i]!)), 0);
    expect(worst).toBeLessThanOrEqual(1e-5 * largest);

    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const folded = await loadFoldedGraph(pkg, bytes, plain!, options, logger);
    expect(lines).toEqual([]);
    expect(folded?.convChannelNorms).toBe(2);
    expect(opTypes(folded!.bytes)).not.toContain('ReduceL2');
    await Promise.all([plain!.release(), normed!.release(), folded!.session.release(), folded!.feeds.release()]);
  });
});
