import type ort from 'onnxruntime-node';
import type { ModelManifest } from '../../shared/model-manifest.js';

type ValueMetadata = ort.InferenceSession.ValueMetadata;

/** One input the manifest says the graph takes, with the dimensions it fixes (null = any). */
interface ExpectedInput {
  name: string;
  role: string;
  dims: (number | null)[];
}

function expectedInputs(manifest: ModelManifest): ExpectedInput[] {
  const { input, classEmbeddings, lora } = manifest;
  return [
    { name: input.name, role: 'image', dims: [null, 3, input.height, input.width] },
    { name: classEmbeddings.input, role: 'class embeddings', dims: [null, classEmbeddings.dim] },
    ...lora.targets.flatMap((t) => [
      { name: t.inputA, role: `LoRA A of ${t.module}`, dims: [null, t.in] },
      { name: t.inputB, role: `LoRA B of ${t.module}`, dims: [t.out, null] },
    ]),
  ];
}

/**
 * Compares the graph's inputs and outputs with the manifest and returns one line per
 * difference (empty = they agree). Symbolic graph dimensions (batch, rank, "C") match
 * anything; fixed ones must equal what the manifest promises, since the worker sizes its
 * feeds from the manifest alone.
 */
export function compareModelInterface(manifest: ModelManifest, graph: { inputs: readonly ValueMetadata[]; outputs: readonly ValueMetadata[] }): string[] {
  const problems: string[] = [];
  const byName = new Map(graph.inputs.map((m) => [m.name, m]));
  const expected = expectedInputs(manifest);
  for (const want of expected) {
    const got = byName.get(want.name);
    if (!got) {
      problems.push(`graph has no input "${want.name}" (${want.role})`);
      continue;
    }
    if (!got.isTensor || got.type !== 'float32') {
      problems.push(`input "${want.name}" is ${got.isTensor ? got.type : 'not a tensor'}, expected float32`);
      continue;
    }
    if (got.shape.length !== want.dims.length) {
      problems.push(`input "${want.name}" has rank ${got.shape.length}, expected ${want.dims.length}`);
      continue;
    }
    want.dims.forEach((dim, axis) => {
      const actual = got.shape[axis];
      if (dim !== null && typeof actual === 'number' && actual >= 0 && actual !== dim) {
        problems.push(`input "${want.name}" dimension ${axis} is ${actual}, manifest says ${dim}`);
      }
    });
  }
  const known = new Set(expected.map((e) => e.name));
  for (const extra of graph.inputs.filter((m) => !known.has(m.name))) {
    problems.push(`graph input "${extra.name}" is not in the manifest (nothing would feed it)`);
  }
  if (!graph.outputs.some((m) => m.name === manifest.output.name)) {
    problems.push(`graph has no output "${manifest.output.name}" (outputs: ${graph.outputs.map((m) => m.name).join(', ') || 'none'})`);
  }
  return problems;
}
