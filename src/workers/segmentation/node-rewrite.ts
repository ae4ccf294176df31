import {
  GRAPH_INITIALIZER,
  GRAPH_NODE,
  MODEL_GRAPH,
  MODEL_IR_VERSION,
  WireFormatError,
  concatBytes,
  containsText,
  lenRecord,
  readFields,
  repeatedVarints,
  parseNode,
  withGraph,
  type GraphNode,
} from './onnx-wire.js';

/** One kind of node a rewrite replaces with others (einsum-projection.ts, channel-norm-conv.ts). */
export interface NodeRewrite {
  /** The op type it replaces; a graph whose bytes never mention it is not parsed node by node. */
  opType: string;
  /** Prefix of every name it adds, so that none can meet a package's own: a graph that mentions it is left alone. */
  prefix: string;
  /** The nodes (GraphProto node records) that replace `node` (of `opType`), their names derived from `name`; undefined keeps it. */
  replace(node: GraphNode, name: string): Uint8Array[] | undefined;
  /** Initializers (TensorProto) the replacements share, added once when any node was replaced. */
  initializers(): Uint8Array[];
}

export interface RewrittenModel {
  /** The model, rewritten where `rewritten` > 0, else the bytes given. */
  bytes: Uint8Array;
  /** Nodes replaced. */
  rewritten: number;
}

/**
 * The model with every node of `rewrite.opType` that `rewrite.replace` accepts replaced, the
 * replacements named `${prefix}0`, `${prefix}1`… and the model copied once. Bytes that do not
 * parse, and models of IR version below 4, come back unchanged.
 */
export function rewriteNodes(model: Uint8Array, rewrite: NodeRewrite): RewrittenModel {
  const unchanged = { bytes: model, rewritten: 0 };
  try {
    const modelFields = readFields(model);
    const graphs = modelFields.filter((f) => f.field === MODEL_GRAPH);
    // Below IR version 4 an initializer must also be a graph input; the rewrites add plain ones.
    if (graphs.length !== 1 || (repeatedVarints(modelFields, MODEL_IR_VERSION)[0] ?? 0) < 4) return unchanged;
    const graphBytes = graphs[0]!.payload;
    if (!containsText(graphBytes, rewrite.opType) || containsText(graphBytes, rewrite.prefix)) return unchanged;

    let rewritten = 0;
    const graph = readFields(graphBytes).map((f) => {
      if (f.field !== GRAPH_NODE || !containsText(f.payload, rewrite.opType)) return f.record;
      const node = parseNode(f.payload);
      const nodes = node.opType === rewrite.opType ? rewrite.replace(node, `${rewrite.prefix}${rewritten}`) : undefined;
      if (!nodes) return f.record;
      rewritten++;
      return concatBytes(nodes);
    });
    if (rewritten === 0) return unchanged;
    const initializers = rewrite.initializers().map((tensor) => lenRecord(GRAPH_INITIALIZER, tensor));
    return { bytes: withGraph(modelFields, [...graph, ...initializers]), rewritten };
  } catch (error) {
    if (error instanceof WireFormatError) return unchanged;
    throw error;
  }
}
