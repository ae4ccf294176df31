import type { LoraTarget } from '../../shared/model-manifest.js';
import {
  ATTRIBUTE_FLOAT,
  FLOAT,
  GRAPH_INITIALIZER,
  GRAPH_INPUT,
  GRAPH_NODE,
  GRAPH_OUTPUT,
  GRAPH_VALUE_INFO,
  MODEL_GRAPH,
  MODEL_IR_VERSION,
  MODEL_OPSET_IMPORT,
  NODE_INPUT,
  OPSET_DOMAIN,
  OPSET_VERSION,
  TENSOR_DATA_TYPE,
  TENSOR_DIMS,
  TENSOR_FLOAT_DATA,
  TENSOR_NAME,
  TENSOR_RAW_DATA,
  WIRE_FIXED32,
  WIRE_LEN,
  WireFormatError,
  concatBytes,
  intAttribute,
  intAttributeRecord,
  lenRecord,
  nodeAttribute,
  nodeRecord,
  readFields,
  repeatedVarints,
  storedExternally,
  stringRecord,
  tensorValueInfo,
  textOf,
  valueInfoName,
  varintRecord,
  parseNode,
  withGraph,
  type GraphNode,
  type WireField,
} from './onnx-wire.js';

/**
 * A LoRA target of the folded graph: the module's weight is a graph input, fed W + ΔW.
 * `rows`: one row of `in` values per output, as a Conv weight [out, C, kh, kw] (in = C·kh·kw,
 * the order A's rows take) or a Gemm's with transB, so ΔW = B·A as is; `columns`: the
 * right-hand side of x·W, [in, out], so ΔWᵀ.
 */
export interface FoldedTarget {
  inputA: string;
  inputB: string;
  /** The folded graph's input for this module's weight (the package graph's initializer name). */
  weightInput: string;
  dims: number[];
  layout: 'rows' | 'columns';
  in: number;
  out: number;
  /** The package's weight W, in the layout of `dims`. */
  base: Float32Array;
}

export interface FoldedLoraModel {
  /** The package's model.onnx without its LoRA branches; each target's weight is an input. */
  bytes: Uint8Array;
  targets: FoldedTarget[];
}

export type LoraFoldResult = { folded: FoldedLoraModel } | { reason: string };

interface Initializer {
  fields: WireField[];
  name: string;
}

class FoldRefused extends Error {}

/**
 * Rewrites the package graph so that each LoRA target's branch (x → A → B, added to the module's
 * output) is gone and the module's weight becomes a graph input, fed the merged W + ΔW
 * (weightFoldingModel). Per frame the network then costs what the base network costs: on
 * models/default at 224x128, 2 frames per run, one thread, ~7.9 ms of CPU per frame instead of
 * ~9.3 (bench/README.md). The branch is found from the graph alone: everything computed from a
 * target's A and B up to the first Add that also takes a tensor not computed from them; the
 * Add's other operand is the module's output, and the Conv, MatMul or Gemm that makes it
 * (through a bias Add at most) holds W. Returns the reason instead when the graph does not have
 * that shape; the caller then checks the result numerically against the package graph.
 */
export function foldLoraBranches(model: Uint8Array, targets: readonly LoraTarget[]): LoraFoldResult {
  try {
    return { folded: fold(model, targets) };
  } catch (error) {
    if (error instanceof FoldRefused || error instanceof WireFormatError) return { reason: error.message };
    throw error;
  }
}

function fold(model: Uint8Array, targets: readonly LoraTarget[]): FoldedLoraModel {
  if (targets.length === 0) throw new FoldRefused('the manifest has no LoRA targets');
  const modelFields = readFields(model);
  const graphFields = readFields(single(modelFields, MODEL_GRAPH, 'graph').payload);
  const nodes = graphFields.filter((f) => f.field === GRAPH_NODE).map((f) => parseNode(f.payload));
  const initializerList = graphFields
    .filter((f) => f.field === GRAPH_INITIALIZER)
    .map((f): Initializer => {
      const fields = readFields(f.payload);
      return { fields, name: textOf(single(fields, TENSOR_NAME, 'initializer name').payload) };
    });
  const initializers = new Map(initializerList.map((initializer) => [initializer.name, initializer]));
  const inputNames = graphFields.filter((f) => f.field === GRAPH_INPUT).map((f) => valueInfoName(f.payload));
  const graphOutputs = new Set(graphFields.filter((f) => f.field === GRAPH_OUTPUT).map((f) => valueInfoName(f.payload)));
  const producer = new Map<string, GraphNode>();
  const consumers = new Map<string, GraphNode[]>();
  for (const node of nodes) {
    for (const output of node.outputs) producer.set(output, node);
    for (const input of node.inputs) {
      const list = consumers.get(input);
      if (list) list.push(node);
      else consumers.set(input, [node]);
    }
  }

  const replace = new Map<string, string>();
  const folded: FoldedTarget[] = [];
  for (const target of targets) {
    const branch = new Set([target.inputA, target.inputB]);
    const joins = new Set<GraphNode>();
    for (const queue = [...branch]; queue.length > 0;) {
      for (const node of consumers.get(queue.pop()!) ?? []) {
        if (node.opType === 'Add' && !node.inputs.every((input) => branch.has(input))) {
          joins.add(node);
          continue;
        }
        for (const output of node.outputs.filter((o) => !branch.has(o))) {
          branch.add(output);
          queue.push(output);
        }
      }
    }
    if (joins.size !== 1) throw new FoldRefused(`${target.module}: the LoRA branch joins the network at ${joins.size} Add nodes, not 1`);
    const join = [...joins][0]!;
    const moduleOutput = join.inputs.find((input) => !branch.has(input));
    if (join.inputs.length !== 2 || moduleOutput === undefined)
      throw new FoldRefused(`${target.module}: the Add that joins the LoRA branch has no single module operand`);
    if (graphOutputs.has(join.outputs[0]!)) throw new FoldRefused(`${target.module}: the LoRA sum is a graph output`);
    replace.set(join.outputs[0]!, moduleOutput);
    folded.push(weightOf(target, moduleOutput, producer, initializers));
  }
  if (new Set(folded.map((t) => t.weightInput)).size !== folded.length) throw new FoldRefused('two LoRA targets share one weight');

  const rewired = (name: string) => replace.get(name) ?? name;
  // Keep what the graph's outputs still need once every join is bypassed.
  const needed = new Set(graphOutputs);
  const kept = new Set<GraphNode>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    if (!node.outputs.some((output) => needed.has(output))) continue;
    kept.add(node);
    for (const input of node.inputs) if (input) needed.add(rewired(input));
  }
  const loraInputs = new Set(targets.flatMap((t) => [t.inputA, t.inputB]));
  for (const name of loraInputs) if (needed.has(name)) throw new FoldRefused(`"${name}" is still needed without the LoRA branches`);
  const weightInputs = new Set(folded.map((t) => t.weightInput));
  const declaredInputs = new Set(inputNames);

  const graph: Uint8Array[] = [];
  let node = 0;
  let initializer = 0;
  let input = 0;
  for (const f of graphFields) {
    if (f.field === GRAPH_NODE) {
      const current = nodes[node++]!;
      if (kept.has(current)) graph.push(current.inputs.some((input) => replace.has(input)) ? lenRecord(GRAPH_NODE, rewireNode(current, rewired)) : f.record);
    } else if (f.field === GRAPH_INITIALIZER) {
      const { name } = initializerList[initializer++]!;
      if (needed.has(name) && !weightInputs.has(name)) graph.push(f.record);
    } else if (f.field === GRAPH_INPUT) {
      // Before IR 4 every initializer is also listed as an input: one the folded graph no longer
      // uses must go with it, or ORT would ask for it as a feed.
      const name = inputNames[input++]!;
      if (!loraInputs.has(name) && (needed.has(name) || !initializers.has(name))) graph.push(f.record);
    } else if (f.field === GRAPH_VALUE_INFO) {
      if (needed.has(valueInfoName(f.payload))) graph.push(f.record);
    } else graph.push(f.record);
  }
  for (const target of folded)
    if (!declaredInputs.has(target.weightInput)) graph.push(lenRecord(GRAPH_INPUT, tensorValueInfo(target.weightInput, FLOAT, target.dims)));
  return { bytes: withGraph(modelFields, graph), targets: folded };
}

function weightOf(
  target: LoraTarget,
  moduleOutput: string,
  producer: ReadonlyMap<string, GraphNode>,
  initializers: ReadonlyMap<string, Initializer>,
): FoldedTarget {
  let node = producer.get(moduleOutput);
  // A Linear exports as MatMul then Add(bias): step over the bias.
  if (node?.opType === 'Add') node = node.inputs.map((input) => producer.get(input)).find((p) => p?.opType === 'MatMul');
  if (!node || !['Conv', 'MatMul', 'Gemm'].includes(node.opType))
    throw new FoldRefused(`${target.module}: the LoRA branch is added to the output of ${node?.opType ?? 'a graph input'}, not a Conv, MatMul or Gemm`);
  const weightName = node.inputs[1] ?? '';
  const initializer = initializers.get(weightName);
  if (!initializer) throw new FoldRefused(`${target.module}: the ${node.opType}'s weight "${weightName}" is not an initializer`);
  const dims = repeatedVarints(initializer.fields, TENSOR_DIMS);
  let layout: FoldedTarget['layout'];
  let fits: boolean;
  if (node.opType === 'Conv') {
    if ((intAttribute(node, 'group') ?? 1) !== 1) throw new FoldRefused(`${target.module}: a grouped Conv`);
    layout = 'rows';
    fits = dims[0] === target.out && dims.slice(1).reduce((a, b) => a * b, 1) === target.in;
  } else if (node.opType === 'Gemm') {
    if ((intAttribute(node, 'transA') ?? 0) !== 0 || (floatAttribute(node, 'alpha') ?? 1) !== 1)
      throw new FoldRefused(`${target.module}: a Gemm with transA or alpha`);
    layout = intAttribute(node, 'transB') === 1 ? 'rows' : 'columns';
    fits = dims.join('x') === (layout === 'rows' ? [target.out, target.in] : [target.in, target.out]).join('x');
  } else {
    layout = 'columns';
    fits = dims.join('x') === [target.in, target.out].join('x');
  }
  if (!fits)
    throw new FoldRefused(`${target.module}: ${node.opType} weight "${weightName}" is ${dims.join('x')}, not ${target.out} outputs of ${target.in} inputs`);
  return {
    inputA: target.inputA,
    inputB: target.inputB,
    weightInput: weightName,
    dims,
    layout,
    in: target.in,
    out: target.out,
    base: floatsOf(initializer, target.in * target.out),
  };
}

function floatAttribute(node: GraphNode, name: string): number | undefined {
  const value = nodeAttribute(node.fields, name)?.find((f) => f.field === ATTRIBUTE_FLOAT && f.wire === WIRE_FIXED32);
  return value ? new DataView(value.record.buffer, value.record.byteOffset + value.record.length - 4, 4).getFloat32(0, true) : undefined;
}

function floatsOf(initializer: Initializer, count: number): Float32Array {
  const { fields, name } = initializer;
  const type = repeatedVarints(fields, TENSOR_DATA_TYPE)[0];
  if (type !== FLOAT) throw new FoldRefused(`weight "${name}" is not float32 (data type ${type})`);
  if (storedExternally(fields)) throw new FoldRefused(`weight "${name}" is stored outside the model file`);
  const raw = fields.find((f) => f.field === TENSOR_RAW_DATA);
  const values = new Float32Array(count);
  if (raw) {
    if (raw.payload.length !== count * 4) throw new FoldRefused(`weight "${name}" has ${raw.payload.length} bytes, expected ${count * 4}`);
    // ONNX stores raw_data little-endian, as every platform onnxruntime-node ships for.
    new Uint8Array(values.buffer).set(raw.payload);
    return values;
  }
  const view: number[] = [];
  for (const f of fields.filter((f) => f.field === TENSOR_FLOAT_DATA)) {
    const data = f.wire === WIRE_LEN ? f.payload : f.wire === WIRE_FIXED32 ? f.record.subarray(f.record.length - 4) : undefined;
    if (!data) continue;
    const floats = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let at = 0; at + 4 <= data.byteLength; at += 4) view.push(floats.getFloat32(at, true));
  }
  if (view.length !== count) throw new FoldRefused(`weight "${name}" has ${view.length} values, expected ${count}`);
  values.set(view);
  return values;
}

/** The node with each input renamed; every other field as it was. */
function rewireNode(node: GraphNode, rename: (name: string) => string): Uint8Array {
  return concatBytes(node.fields.map((f) => (f.field === NODE_INPUT ? stringRecord(NODE_INPUT, rename(textOf(f.payload))) : f.record)));
}

function single(fields: readonly WireField[], field: number, what: string): WireField {
  const found = fields.filter((f) => f.field === field && f.wire === WIRE_LEN);
  if (found.length !== 1) throw new FoldRefused(`expected one ${what}, found ${found.length}`);
  return found[0]!;
}

/**
 * A small ONNX model that folds one LoRA pair per target into its weight: inputs `a<k>` [r, in]
 * and `b<k>` [out, r] (r free per target), output `folded<k>` = W + B·A in the target's layout
 * ([out, in] for `rows`, to be read with the target's dims), one Gemm each with W as its C. ONNX Runtime's GEMM does in well under a millisecond what a
 * JavaScript loop needs ~14 ms for (a rank-24 merge of models/default's 15 targets: 7.3M
 * multiply-adds), and a merge is folded on the event loop's thread.
 */
export function weightFoldingModel(targets: readonly FoldedTarget[]): Uint8Array {
  const graph: Uint8Array[] = [];
  targets.forEach((target, k) => {
    const rows = target.layout === 'rows';
    const [a, b, w, folded] = [`a${k}`, `b${k}`, `w${k}`, `folded${k}`];
    const attributes = rows ? [] : [intAttributeRecord('transA', 1), intAttributeRecord('transB', 1)];
    const inputs = rows ? [b, a, w] : [a, b, w];
    graph.push(nodeRecord('Gemm', inputs, folded, attributes));
    const shape = rows ? [target.out, target.in] : [target.in, target.out];
    const base = new Uint8Array(target.base.buffer, target.base.byteOffset, target.base.byteLength);
    graph.push(
      lenRecord(
        GRAPH_INITIALIZER,
        concatBytes([
          ...shape.map((dim) => varintRecord(TENSOR_DIMS, dim)),
          varintRecord(TENSOR_DATA_TYPE, FLOAT),
          stringRecord(TENSOR_NAME, w),
          lenRecord(TENSOR_RAW_DATA, base),
        ]),
      ),
    );
    graph.push(
      lenRecord(GRAPH_INPUT, tensorValueInfo(a, FLOAT, [`r${k}`, target.in])),
      lenRecord(GRAPH_INPUT, tensorValueInfo(b, FLOAT, [target.out, `r${k}`])),
    );
    graph.push(lenRecord(GRAPH_OUTPUT, tensorValueInfo(folded, FLOAT, shape)));
  });
  const opset = concatBytes([stringRecord(OPSET_DOMAIN, ''), varintRecord(OPSET_VERSION, 13)]);
  return concatBytes([varintRecord(MODEL_IR_VERSION, 8), lenRecord(MODEL_OPSET_IMPORT, opset), lenRecord(MODEL_GRAPH, concatBytes(graph))]);
}
