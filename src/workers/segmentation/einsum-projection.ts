import { rewriteNodes, type RewrittenModel } from './node-rewrite.js';
import { ATTRIBUTE_STRING, int64Initializer, intsAttributeRecord, nodeAttribute, nodeRecord, textOf, type GraphNode } from './onnx-wire.js';

/** Prefix of every tensor the rewrite adds, so that none can meet a package's own names. */
const PREFIX = 'streamseg_projection';

/**
 * The network with each per-pixel projection written as an Einsum `ndhw,cd->nchw` (features
 * [N, D, H, W] against class embeddings [C, D], letters free) computed as a 1x1 Conv instead, the
 * embeddings reshaped to its weight [C, D, 1, 1]: one GEMM per frame, no transposes. ONNX
 * Runtime's Einsum transposes its operands for this equation; on models/default at 224x128, 2
 * frames per run, one thread, that is 0.3–0.6 ms of CPU per frame less (bench/README.md, ninth
 * round). A Reshape → MatMul → Reshape computes the same as fast but held 3–6 MiB more per session
 * after 100 runs. The same products, possibly summed in another order: on models/default the
 * logits came out identical, and the folded graph's check against the package graph
 * (folded-graph.ts) bounds any difference. Any other Einsum is left as it is; bytes that do not
 * parse, or a graph that mentions this rewrite's names, come back unchanged.
 */
export function withConvProjections(model: Uint8Array): RewrittenModel {
  return rewriteNodes(model, {
    opType: 'Einsum',
    prefix: PREFIX,
    replace: (node, name) => {
      const operands = projectionOperands(node);
      return operands && projectionNodes(operands, name);
    },
    initializers: () => [int64Initializer(`${PREFIX}_weight_shape`, [0, 0, 1, 1])],
  });
}

interface ProjectionOperands {
  features: string;
  embeddings: string;
  output: string;
}

/** The operands of an Einsum `ndhw,cd->nchw` (any four distinct letters plus one), else undefined. */
function projectionOperands(node: GraphNode): ProjectionOperands | undefined {
  const { inputs, outputs } = node;
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
  const weight = `${name}_weight`;
  return [
    // Reshape's 0 copies the dimension: [C, D] → [C, D, 1, 1].
    nodeRecord('Reshape', [embeddings, `${PREFIX}_weight_shape`], weight),
    nodeRecord('Conv', [features, weight], output, [intsAttributeRecord('kernel_shape', [1, 1])]),
  ];
}

function stringAttribute(node: GraphNode, name: string): string | undefined {
  const value = nodeAttribute(node.fields, name)?.find((a) => a.field === ATTRIBUTE_STRING);
  return value ? textOf(value.payload) : undefined;
}
