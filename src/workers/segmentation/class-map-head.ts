import {
  GRAPH_INITIALIZER,
  GRAPH_NODE,
  GRAPH_OUTPUT,
  MODEL_GRAPH,
  NODE_OUTPUT,
  UINT8,
  WireFormatError,
  intAttributeRecord,
  lenRecord,
  nodeRecord,
  readFields,
  storedExternally,
  tensorValueInfo,
  textOf,
  valueInfoName,
  withGraph,
} from './onnx-wire.js';

/** The graph output the head adds: uint8 [N, H, W], the logit channel that wins at each pixel. */
export const CLASS_MAP_OUTPUT = 'streamseg_class_map';

/** The head's intermediate ArgMax result (int64), named so that it cannot meet a package's own names. */
const CLASS_INDEX = 'streamseg_class_index';

export type ClassMapHeadResult = { bytes: Uint8Array } | { reason: string };

/**
 * The network with a class-map output next to its logits: ArgMax over the channel axis of
 * `logitsOutput` ([N, C, H, W]), cast to uint8. The inference thread asks for that output alone,
 * so the logits (C floats per pixel) are neither copied out of ONNX Runtime nor reduced in
 * JavaScript: on models/default at 224x128, 2 frames per run, one thread, 9.4–10.0 ms of CPU
 * per frame with argmaxMasks against 8.8 with the head (bench/README.md, eighth round). ArgMax
 * keeps the first of equal maxima, as argmaxMasks does. Returns the reason instead when the
 * graph is not one the head can be added to (no such output, a name already taken, weights in a
 * file beside the model, bytes that do not parse).
 */
export function withClassMapHead(model: Uint8Array, logitsOutput: string): ClassMapHeadResult {
  try {
    const modelFields = readFields(model);
    const graphs = modelFields.filter((f) => f.field === MODEL_GRAPH);
    if (graphs.length !== 1) return { reason: `expected one graph, found ${graphs.length}` };
    const graphFields = readFields(graphs[0]!.payload);
    const outputs = graphFields.filter((f) => f.field === GRAPH_OUTPUT).map((f) => valueInfoName(f.payload));
    if (!outputs.includes(logitsOutput)) return { reason: `the graph has no output "${logitsOutput}"` };
    // ORT resolves a weight file beside the model from the model's path: bytes have none.
    if (graphFields.some((f) => f.field === GRAPH_INITIALIZER && storedExternally(readFields(f.payload))))
      return { reason: 'its weights are stored outside the model file' };
    const taken = new Set(outputs);
    for (const f of graphFields) {
      if (f.field !== GRAPH_NODE) continue;
      for (const out of readFields(f.payload)) if (out.field === NODE_OUTPUT) taken.add(textOf(out.payload));
    }
    for (const name of [CLASS_MAP_OUTPUT, CLASS_INDEX]) if (taken.has(name)) return { reason: `the graph already has a tensor named "${name}"` };
    const head = [
      nodeRecord('ArgMax', [logitsOutput], CLASS_INDEX, [intAttributeRecord('axis', 1), intAttributeRecord('keepdims', 0)]),
      nodeRecord('Cast', [CLASS_INDEX], CLASS_MAP_OUTPUT, [intAttributeRecord('to', UINT8)]),
      lenRecord(GRAPH_OUTPUT, tensorValueInfo(CLASS_MAP_OUTPUT, UINT8)),
    ];
    return { bytes: withGraph(modelFields, [...graphFields.map((f) => f.record), ...head]) };
  } catch (error) {
    if (error instanceof WireFormatError) return { reason: error.message };
    throw error;
  }
}
