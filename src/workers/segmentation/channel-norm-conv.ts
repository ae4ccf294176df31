import { rewriteNodes, type RewrittenModel } from './node-rewrite.js';
import {
  ATTRIBUTE_INTS,
  floatInitializer,
  int64Initializer,
  intAttribute,
  intAttributeRecord,
  intsAttributeRecord,
  nodeAttribute,
  nodeRecord,
  repeatedVarints,
  type GraphNode,
} from './onnx-wire.js';

/** Prefix of every tensor the rewrite adds, so that none can meet a package's own names. */
const PREFIX = 'streamseg_channel_norm';
const REDUCE_L2 = 'ReduceL2';

/**
 * The network with each L2 norm over the channel axis (ReduceL2, `axes` [1]: the length of every
 * pixel's feature vector, which segmentation heads divide by before comparing with class
 * embeddings) computed as squares summed by a 1x1 Conv with a weight of ones, then Sqrt. ONNX
 * Runtime reduces a non-last axis one strided float at a time: on models/default at 224x128, 2
 * frames per run, one thread, that ReduceL2 took 14.5% of the network's time, and the Conv form
 * cut 1.2–1.4 ms of CPU per frame (bench/README.md, tenth round).
 *
 * The input's rank and channel count are not known from the graph, so the rewrite reads them at
 * run time: the squares are reshaped to [N, C, rest, 1], summed by a Conv whose weight of ones is
 * expanded to [1, C, 1, 1], and the sums reshaped to the shape ReduceL2 gives. The same squares,
 * summed in another order: the folded graph's check against the package graph (folded-graph.ts)
 * bounds the difference. The weight of ones is float32, as the networks streamseg runs are; on
 * another type the rewritten network fails to load, and the worker keeps the package graph with a
 * log line saying so (folded-graph.ts). Other axes, `axes` given as an input (opset 18), and
 * models of IR version < 4 (whose initializers must be graph inputs) are left as they are; so are
 * bytes that do not parse and a graph that mentions this rewrite's names.
 */
export function withConvChannelNorms(model: Uint8Array): RewrittenModel {
  return rewriteNodes(model, {
    opType: REDUCE_L2,
    prefix: PREFIX,
    replace: (node, name) => {
      const norm = channelNorm(node);
      return norm && channelNormNodes(norm, name);
    },
    initializers: constants,
  });
}

interface ChannelNorm {
  input: string;
  output: string;
  keepDims: boolean;
}

/** A ReduceL2 over axis 1 with its axes as an attribute, else undefined. */
function channelNorm(node: GraphNode): ChannelNorm | undefined {
  const { inputs, outputs } = node;
  if (inputs.length !== 1 || outputs.length !== 1) return undefined;
  const axes = nodeAttribute(node.fields, 'axes');
  if (!axes || repeatedVarints(axes, ATTRIBUTE_INTS).join() !== '1') return undefined;
  return { input: inputs[0]!, output: outputs[0]!, keepDims: intAttribute(node, 'keepdims') !== 0 };
}

const constant = (name: string) => `${PREFIX}_${name}`;

/** The initializers the nodes below share. */
function constants(): Uint8Array[] {
  return [
    int64Initializer(constant('0'), [0]),
    int64Initializer(constant('1'), [1]),
    int64Initializer(constant('2'), [2]),
    int64Initializer(constant('end'), [Number.MAX_SAFE_INTEGER]),
    // Reshape's 0 copies the dimension: [N, C, …] → [N, C, rest, 1].
    int64Initializer(constant('flat'), [0, 0, -1, 1]),
    floatInitializer(constant('one'), [1], []),
  ];
}

/** The nodes that replace one ReduceL2; `output` keeps its name, so its consumers are untouched. */
function channelNormNodes({ input, output, keepDims }: ChannelNorm, name: string): Uint8Array[] {
  const t = (suffix: string) => `${name}_${suffix}`;
  const axis0 = [intAttributeRecord('axis', 0)];
  return [
    nodeRecord('Mul', [input, input], t('squares')),
    nodeRecord('Shape', [input], t('shape')),
    nodeRecord('Slice', [t('shape'), constant('0'), constant('1')], t('batch')),
    nodeRecord('Slice', [t('shape'), constant('1'), constant('2')], t('channels')),
    nodeRecord('Slice', [t('shape'), constant('2'), constant('end')], t('rest')),
    nodeRecord('Concat', [constant('1'), t('channels'), constant('1'), constant('1')], t('weight_shape'), axis0),
    nodeRecord('Expand', [constant('one'), t('weight_shape')], t('weight')),
    nodeRecord('Reshape', [t('squares'), constant('flat')], t('flat')),
    nodeRecord('Conv', [t('flat'), t('weight')], t('sums'), [intsAttributeRecord('kernel_shape', [1, 1])]),
    nodeRecord('Sqrt', [t('sums')], t('norms')),
    nodeRecord('Concat', keepDims ? [t('batch'), constant('1'), t('rest')] : [t('batch'), t('rest')], t('output_shape'), axis0),
    nodeRecord('Reshape', [t('norms'), t('output_shape')], output),
  ];
}
