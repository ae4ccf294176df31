import path from 'node:path';
import { Option, type Command } from 'commander';
import ort from 'onnxruntime-node';
import { ErrorCode, ModelError, StreamsegError } from '../../shared/errors/index.js';
import { loadModelPackage } from '../../shared/model-manifest.js';
import { readAdapterIndex } from '../../workers/adapters/adapter-registry.js';
import { compareModelInterface } from '../../workers/segmentation/model-interface.js';
import { exitWithError } from '../exit.js';
import { runPythonScript } from './python-script.js';

export interface ImportFlags {
  classes: string;
  out: string;
  name?: string;
  mean?: string;
  std?: string;
  size?: string;
  fitPixels?: string;
  stride?: string;
  maxSide?: string;
  loraPattern?: string;
  loraKernels?: string;
  maxRank?: string;
  embedTensor?: string;
  baseFrom?: string;
  threads?: string;
  force?: boolean;
  json?: boolean;
}

/**
 * Imports `file` into a model package at `flags.out` (training/import_model.py does the graph
 * surgery and the parity checks), then checks the package the way a worker loads it: the
 * manifest parses, ONNX Runtime loads model.onnx, and its inputs and outputs match model.json.
 */
export async function importModel(file: string, flags: ImportFlags): Promise<Record<string, unknown>> {
  const classes = flags.classes
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  if (classes.length === 0) throw new StreamsegError(ErrorCode.IMPORT_CLASSES, '--classes lists no class names (e.g. --classes sky,road,person)');
  const args = [path.resolve(file), '--classes', classes.join(','), '--out', path.resolve(flags.out)];
  const pass = (flag: string, value: string | undefined) => value !== undefined && args.push(flag, value);
  pass('--name', flags.name);
  pass('--mean', flags.mean);
  pass('--std', flags.std);
  pass('--size', flags.size);
  pass('--fit-pixels', flags.fitPixels);
  pass('--stride', flags.stride);
  pass('--max-side', flags.maxSide);
  pass('--lora-pattern', flags.loraPattern);
  pass('--lora-kernels', flags.loraKernels);
  pass('--max-rank', flags.maxRank);
  pass('--embed-tensor', flags.embedTensor);
  if (flags.baseFrom) pass('--base-from', path.resolve(flags.baseFrom));
  pass('--threads', flags.threads);
  if (flags.force) args.push('--force');
  const { json } = await runPythonScript('import_model.py', args);

  const pkg = await loadModelPackage(flags.out);
  await readAdapterIndex(pkg);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(pkg.modelPath, { graphOptimizationLevel: 'all' });
  } catch (cause) {
    throw new ModelError(
      ErrorCode.MODEL_LOAD,
      `${pkg.modelPath}: ONNX Runtime (Node) cannot load the imported graph: ${(cause as Error).message.split('\n')[0]}`,
      { cause },
    );
  }
  try {
    const problems = compareModelInterface(pkg.manifest, { inputs: session.inputMetadata, outputs: session.outputMetadata });
    if (problems.length > 0) throw new ModelError(ErrorCode.MODEL_MISMATCH, `${pkg.modelPath} does not match its model.json: ${problems.join('; ')}`);
  } finally {
    await session.release().catch(() => undefined);
  }
  return json;
}

/** `streamseg model import`: bring your own ONNX segmentation network. */
export function registerModelCommand(program: Command): void {
  const model = program.command('model').description('model packages: import your own ONNX segmentation network');
  model
    .command('import')
    .description(
      'turn an ONNX segmentation network (NCHW image in, per-class logits out) into a model package with LoRA inputs, an embedder and an empty adapter index',
    )
    .argument('<model.onnx>', 'the network, e.g. from torch.onnx.export (input NCHW float, output [N, K, H, W] logits)')
    .requiredOption('--classes <names>', 'comma-separated class names, one per output channel, in order')
    .requiredOption('--out <dir>', 'package directory to write')
    .option('--name <name>', 'package name (default: the --out directory name)')
    .option('--mean <r,g,b>', 'normalisation mean of (pixel/255) per channel', '0.485,0.456,0.406')
    .option('--std <r,g,b>', 'normalisation std per channel', '0.229,0.224,0.225')
    .option('--size <WxH>', "fixed input size, frames letterboxed into it (default: the graph's fixed size; a dynamic H/W graph gets an aspect-preserving fit)")
    .option('--fit-pixels <n>', 'dynamic H/W: pixels per model input (input.fit.pixels)', String(224 * 128))
    .option('--stride <n>', "dynamic H/W: sides are multiples of this (the network's output stride)", '32')
    .option('--max-side <n>', 'dynamic H/W: longest side at most', '1024')
    .option(
      '--lora-pattern <regex>',
      'only layers whose module name matches get LoRA (default: every Conv with group 1, Gemm and MatMul with constant weights)',
    )
    .addOption(new Option('--lora-kernels <which>', 'Conv kernels that get LoRA').choices(['all', '1x1']).default('all'))
    .option('--max-rank <r>', 'largest adapter rank adapters train will use (recorded in model.json)', '16')
    .option('--embed-tensor <name>', 'tensor whose per-channel statistics the retrieval embedder uses (default: an early encoder feature map)')
    .option(
      '--base-from <video|dir>',
      'footage of the domain the model was trained on: its centroid is the base domain, so scenes nearest to it run the base model',
    )
    .option('--threads <n>', 'threads for the checks', '1')
    .option('--force', 'write into an existing non-empty --out', false)
    .option('--json', 'print only the import report as one JSON line', false)
    .action(async (file: string, flags: ImportFlags) => {
      try {
        const report = await importModel(file, flags);
        if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else
          process.stdout.write(
            `imported ${file} into ${flags.out}: run it with \`streamseg run VIDEO --model ${flags.out}\`, adapt it with \`streamseg adapters train --model ${flags.out} --from VIDEO --name NAME\`\n`,
          );
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
