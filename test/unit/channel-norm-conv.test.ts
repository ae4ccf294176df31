import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { withConvChannelNorms } from '../../src/workers/segmentation/channel-norm-conv.js';
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
  intAttributeRecord,
  intsAttributeRecord,
  lenRecord,
  nodeRecord,
  stringRecord,
  tensorValueInfo,
  varintRecord,
} from '../../src/workers/segmentation/onnx-wire.js';
import { loadDefaultFolded, loadDefaultModel, logitDifference } from '../helpers/default-model.js';
import { cpuSessionOptions, opTypes, wave } from '../helpers/onnx-graph.js';

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
    const [before, after] = await Promise.all([model, result.bytes].map((bytes) => ort.InferenceSession.create(bytes, cpuSessionOptions)));
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
    const model = await loadDefaultModel();
    const result = withConvChannelNorms(model.bytes);
    expect(result.rewritten).toBe(2);
    expect(await logitDifference(model, result.bytes)).toBeLessThanOrEqual(1e-5);
    const { folded, logLines, release } = await loadDefaultFolded(model);
    expect(logLines).toEqual([]);
    expect(folded?.convChannelNorms).toBe(2);
    expect(opTypes(folded!.bytes)).not.toContain('ReduceL2');
    await release();
  });
});
