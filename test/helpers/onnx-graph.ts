import { GRAPH_NODE, MODEL_GRAPH, NODE_OP_TYPE, readFields, textOf } from '../../src/workers/segmentation/onnx-wire.js';

/** Session options of the graph-rewrite tests: ONNX Runtime's full optimisation, on the CPU. */
export const cpuSessionOptions = { graphOptimizationLevel: 'all' as const, executionProviders: ['cpu'] };

/** The op types of a model's nodes, in order. */
export function opTypes(model: Uint8Array): string[] {
  const graph = readFields(model).find((f) => f.field === MODEL_GRAPH)!.payload;
  return readFields(graph)
    .filter((f) => f.field === GRAPH_NODE)
    .map((f) => textOf(readFields(f.payload).find((part) => part.field === NODE_OP_TYPE)!.payload));
}

/** Deterministic, varied input values (a sine with a 5-step amplitude ramp). */
export const wave = (length: number, phase: number) => Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + phase) * (1 + (i % 5)));
