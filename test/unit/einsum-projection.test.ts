import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { withConvProjections } from '../../src/workers/segmentation/einsum-projection.js';
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
  stringRecord,
  tensorValueInfo,
  varintRecord,
} from '../../src/workers/segmentation/onnx-wire.js';
import { loadDefaultFolded, loadDefaultModel, logitDifference } from '../helpers/default-model.js';
import { cpuSessionOptions, opTypes, wave } from '../helpers/onnx-graph.js';

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
    const [before, after] = await Promise.all([model, result.bytes].map((bytes) => ort.InferenceSession.create(bytes, cpuSessionOptions)));
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
    const model = await loadDefaultModel();
    const result = withConvProjections(model.bytes);
    expect(result.rewritten).toBe(1);
    expect(await logitDifference(model, result.bytes)).toBeLessThanOrEqual(1e-5);
    const { folded, logLines, release } = await loadDefaultFolded(model);
    expect(logLines).toEqual([]);
    expect(folded?.convProjections).toBe(1);
    expect(opTypes(folded!.bytes)).not.toContain('Einsum');
    await release();
  });
});
