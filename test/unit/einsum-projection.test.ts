import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { withConvProjections } from '../../src/workers/segmentation/einsum-projection.js';
import { loadFoldedGraph } from '../../src/workers/segmentation/folded-graph.js';
import {
  ATTRIBUTE_NAME,
  ATTRIBUTE_STRING,
  ATTRIBUTE_TYPE,
  FLOAT,
  GRAPH_INPUT,
  GRAPH_NODE,
  GRAPH_OUTPUT,
  MODEL_GRAPH,
  MODEL_IR_VERSION,
  MODEL_OPSET_IMPORT,
  NODE_ATTRIBUTE,
  NODE_INPUT,
  NODE_NAME,
  NODE_OP_TYPE,
  NODE_OUTPUT,
  OPSET_DOMAIN,
  OPSET_VERSION,
  concatBytes,
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
/** AttributeProto.AttributeType STRING. */
const ATTRIBUTE_TYPE_STRING = 3;

/** features [N, D, H, W] and embeddings [C, D] → Einsum(equation) → Relu → `out`. */
function einsumModel(equation: string, featuresName = 'features'): Uint8Array {
  const einsum = lenRecord(
    GRAPH_NODE,
    concatBytes([
      stringRecord(NODE_INPUT, featuresName),
      stringRecord(NODE_INPUT, 'embeddings'),
      stringRecord(NODE_OUTPUT, 'projected'),
      stringRecord(NODE_NAME, 'projection'),
      stringRecord(NODE_OP_TYPE, 'Einsum'),
      lenRecord(
        NODE_ATTRIBUTE,
        concatBytes([stringRecord(ATTRIBUTE_NAME, 'equation'), stringRecord(ATTRIBUTE_STRING, equation), varintRecord(ATTRIBUTE_TYPE, ATTRIBUTE_TYPE_STRING)]),
      ),
    ]),
  );
  const opset = concatBytes([stringRecord(OPSET_DOMAIN, ''), varintRecord(OPSET_VERSION, 17)]);
  const graph = concatBytes([
    einsum,
    nodeRecord('Relu', ['projected'], 'out'),
    lenRecord(GRAPH_INPUT, tensorValueInfo(featuresName, FLOAT, ['n', 'd', 'h', 'w'])),
    lenRecord(GRAPH_INPUT, tensorValueInfo('embeddings', FLOAT, ['c', 'd'])),
    lenRecord(GRAPH_OUTPUT, tensorValueInfo('out', FLOAT)),
  ]);
  return concatBytes([varintRecord(MODEL_IR_VERSION, 8), lenRecord(MODEL_OPSET_IMPORT, opset), lenRecord(MODEL_GRAPH, graph)]);
}

function opTypes(model: Uint8Array): string[] {
  const graph = readFields(model).find((f) => f.field === MODEL_GRAPH)!.payload;
  return readFields(graph)
    .filter((f) => f.field === GRAPH_NODE)
    .map((f) => textOf(readFields(f.payload).find((part) => part.field === NODE_OP_TYPE)!.payload));
}

const wave = (length: number, phase: number) => Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + phase) * (1 + (i % 5)));

describe('class projections as a 1x1 Conv', () => {
  it('replaces an Einsum ndhw,cd->nchw (any letters) and computes what it computed', async () => {
    const model = einsumModel('bk yx , ck -> bcyx');
    const result = withConvProjections(model);
    expect(result.rewritten).toBe(1);
    expect(opTypes(result.bytes)).not.toContain('Einsum');
    expect(opTypes(result.bytes)).toContain('Conv');
    const [n, d, h, w, c] = [2, 5, 3, 4, 3];
    const feeds = {
      features: new ort.Tensor('float32', wave(n * d * h * w, 0), [n, d, h, w]),
      embeddings: new ort.Tensor('float32', wave(c * d, 1), [c, d]),
    };
    const [before, after] = await Promise.all([model, result.bytes].map((bytes) => ort.InferenceSession.create(bytes, options)));
    const expected = (await before!.run(feeds)).out!;
    const actual = (await after!.run(feeds)).out!;
    expect(actual.dims).toEqual([n, c, h, w]);
    expect(expected.dims).toEqual([n, c, h, w]);
    const [e, a] = [expected.data as Float32Array, actual.data as Float32Array];
    expect(e.some((x) => x > 0)).toBe(true);
    for (let i = 0; i < e.length; i++) expect(a[i]).toBeCloseTo(e[i]!, 5);
    await Promise.all([before!.release(), after!.release()]);
  });

  it('leaves other equations, and a graph that already uses its names, as they are', () => {
    for (const equation of ['ndhw,dc->nchw', 'ndhw,cd->nhwc', 'nchw,cd->nchw', '...dhw,cd->...chw']) {
      const model = einsumModel(equation);
      expect(withConvProjections(model)).toEqual({ bytes: model, rewritten: 0 });
    }
    const taken = einsumModel('ndhw,cd->nchw', 'streamseg_projection_weight_shape');
    expect(withConvProjections(taken)).toEqual({ bytes: taken, rewritten: 0 });
    const garbage = Uint8Array.from([0x0a, 0xff]);
    expect(withConvProjections(garbage)).toEqual({ bytes: garbage, rewritten: 0 });
  });

  it('rewrites models/default: logits within 1e-5 of the package graph, and the folded network passes its check', async () => {
    const pkg = await loadModelPackage(path.join(REPO_ROOT, 'models/default'));
    const bytes = await readFile(pkg.modelPath);
    const result = withConvProjections(bytes);
    expect(result.rewritten).toBe(1);
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
    const [plain, projected] = await Promise.all([bytes, result.bytes].map((model) => ort.InferenceSession.create(model, options)));
    const expected = (await plain!.run(feeds))[output.name]!;
    const actual = (await projected!.run(feeds))[output.name]!;
    expect(actual.dims).toEqual(expected.dims);
    const [e, a] = [expected.data as Float32Array, actual.data as Float32Array];
    const largest = e.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const worst = e.reduce((m, x, i) => Math.max(m, Math.abs(x - a[i]!)), 0);
    expect(worst).toBeLessThanOrEqual(1e-5 * largest);

    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const folded = await loadFoldedGraph(pkg, bytes, plain!, options, logger);
    expect(lines).toEqual([]);
    expect(folded?.convProjections).toBe(1);
    expect(opTypes(folded!.bytes)).not.toContain('Einsum');
    await Promise.all([plain!.release(), projected!.release(), folded!.session.release(), folded!.feeds.release()]);
  });
});
