import {
  ATTRIBUTE_NAME,
  ATTRIBUTE_STRING,
  GRAPH_INITIALIZER,
  GRAPH_INPUT,
  GRAPH_NODE,
  MODEL_GRAPH,
  NODE_ATTRIBUTE,
  NODE_INPUT,
  NODE_OP_TYPE,
  NODE_OUTPUT,
  TENSOR_NAME,
  WireFormatError,
  concatBytes,
  int64Initializer,
  intAttributeRecord,
  lenRecord,
  nodeRecord,
  readFields,
  textOf,
  valueInfoName,
  type WireField,
} from './onnx-wire.js';

/** Prefix of every tensor the rewrite adds, so that none can meet a package's own names. */
const PREFIX = 'streamseg_projection';

export interface MatMulProjections {
  /** The model, rewritten where `rewritten` > 0, else the bytes given. */
  bytes: Uint8Array;
  /** Einsum nodes replaced. */
  rewritten: number;
}

/**
 * The network with each per-pixel projection written as an Einsum `ndhw,cd->nchw` (features
 * [N, D, H, W] against class embeddings [C, D], letters free) computed as Reshape → MatMul →
 * Reshape instead: features as [N, D, H·W], left-multiplied by the embeddings (one GEMM per frame,
 * no transposes), then back to [N, C, H, W]. ONNX Runtime's Einsum transposes its operands for
 * this equation; on models/default at 224x128, 2 frames per run, one thread, the projection took
 * 7.5% of the network's time as an Einsum and 3% as a MatMul, 0.35 ms of CPU per frame less in
 * all (bench/README.md, ninth round). The same products summed in another order: logits move in
 * the last bits (at most 2.4e-6 on models/default), which the folded graph's check against the
 * package graph (folded-graph.ts) bounds. Any other Einsum is left as it is; bytes that do not
 * parse, or a graph already using this rewrite's names, come back unchanged.
 */
export function withMatMulProjections(model: Uint8Array): MatMulProjections {
  const unchanged = { bytes: model, rewritten: 0 };
  try {
    const modelFields = readFields(model);
    const graphs = modelFields.filter((f) => f.field === MODEL_GRAPH);
    if (graphs.length !== 1) return unchanged;
    const graphFields = readFields(graphs[0]!.payload);
    if (usesPrefix(graphFields)) return unchanged;

    let rewritten = 0;
    const graph = graphFields.map((f) => {
      if (f.field !== GRAPH_NODE) return f.record;
      const node = readFields(f.payload);
      const operands = projectionOperands(node);
      if (!operands) return f.record;
      return concatBytes(projectionNodes(operands, `${PREFIX}${rewritten++}`));
    });
    if (rewritten === 0) return unchanged;
    const constants = [
      int64Initializer(`${PREFIX}_flatten`, [0, 0, -1]),
      int64Initializer(`${PREFIX}_kept`, [0, 0]),
      int64Initializer(`${PREFIX}_from`, [2]),
      int64Initializer(`${PREFIX}_to`, [4]),
    ].map((tensor) => lenRecord(GRAPH_INITIALIZER, tensor));
    const bytes = concatBytes([...graph, ...constants]);
    return { bytes: concatBytes(modelFields.map((f) => (f.field === MODEL_GRAPH ? lenRecord(MODEL_GRAPH, bytes) : f.record))), rewritten };
  } catch (error) {
    if (error instanceof WireFormatError) return unchanged;
    throw error;
  }
}

interface ProjectionOperands {
  features: string;
  embeddings: string;
  output: string;
}

/** The operands of an Einsum `ndhw,cd->nchw` (any four distinct letters plus one), else undefined. */
function projectionOperands(node: readonly WireField[]): ProjectionOperands | undefined {
  const strings = (field: number) => node.filter((f) => f.field === field).map((f) => textOf(f.payload));
  if (strings(NODE_OP_TYPE)[0] !== 'Einsum') return undefined;
  const inputs = strings(NODE_INPUT);
  const outputs = strings(NODE_OUTPUT);
  if (inputs.length !== 2 || outputs.length !== 1) return undefined;
  const equation = stringAttribute(node, 'equation')?.replace(/\s+/g, '');
  const match = equation && /^([a-zA-Z]{4}),([a-zA-Z]{2})->([a-zA-Z]{4})$/.exec(equation);
  if (!match) return undefined;
  const [n, d, h, w] = match[1]!;
  const [c, embeddingDim] = match[2]!;
  if (new Set([n, d, h, w, c]).size !== 5 || embeddingDim !== d || match[3] !== `${n}${c}${h}${w}`) return undefined;
  return { features: inputs[0]!, embeddings: inputs[1]!, output: outputs[0]! };
}

/** The nodes that replace one projection; `output` keeps its name, so its consumers are untouched. */
function projectionNodes({ features, embeddings, output }: ProjectionOperands, name: string): Uint8Array[] {
  const part = (suffix: string) => `${name}_${suffix}`;
  const [flat, product, shape, size, outShape] = [part('flat'), part('product'), part('shape'), part('size'), part('out_shape')];
  return [
    // Reshape's 0 copies the input's dimension: [N, D, H·W], then [N, C] of the product with H, W.
    nodeRecord('Reshape', [features, `${PREFIX}_flatten`], flat),
    nodeRecord('MatMul', [embeddings, flat], product),
    nodeRecord('Shape', [features], shape),
    nodeRecord('Slice', [shape, `${PREFIX}_from`, `${PREFIX}_to`], size),
    nodeRecord('Concat', [`${PREFIX}_kept`, size], outShape, [intAttributeRecord('axis', 0)]),
    nodeRecord('Reshape', [product, outShape], output),
  ];
}

function stringAttribute(node: readonly WireField[], name: string): string | undefined {
  for (const f of node) {
    if (f.field !== NODE_ATTRIBUTE) continue;
    const attribute = readFields(f.payload);
    if (!attribute.some((a) => a.field === ATTRIBUTE_NAME && textOf(a.payload) === name)) continue;
    const value = attribute.find((a) => a.field === ATTRIBUTE_STRING);
    return value ? textOf(value.payload) : undefined;
  }
  return undefined;
}

/** Whether any tensor of the graph already carries the rewrite's prefix. */
function usesPrefix(graphFields: readonly WireField[]): boolean {
  const names: string[] = [];
  for (const f of graphFields) {
    if (f.field === GRAPH_NODE) {
      for (const part of readFields(f.payload)) if (part.field === NODE_OUTPUT) names.push(textOf(part.payload));
    } else if (f.field === GRAPH_INPUT) names.push(valueInfoName(f.payload));
    else if (f.field === GRAPH_INITIALIZER) {
      const name = readFields(f.payload).find((part) => part.field === TENSOR_NAME);
      if (name) names.push(textOf(name.payload));
    }
  }
  return names.some((tensor) => tensor.startsWith(PREFIX));
}
