import { Option, type Command } from 'commander';
import { StreamsegError } from '../../shared/errors/index.js';
import { createLogger } from '../../shared/logger.js';
import { loadModelPackage } from '../../shared/model-manifest.js';
import { evaluateAdapters, formatEvalTable } from '../../eval/evaluate.js';
import { DEFAULT_EVAL_CONDITIONS, DEFAULT_EVAL_SEED, loadTestSet, renderTestSet } from '../../eval/test-set.js';
import { retrievalOverridesSchema } from '../../workers/adapters/retrieval.js';
import { exitWithError } from '../exit.js';
import { configFromFlags } from '../options.js';

interface EvalFlags {
  data?: string;
  seed?: string;
  json: boolean;
  model?: string;
  clips: string;
  frames: string;
  conditions?: string;
  topK?: string;
  tau?: string;
  weighting?: string;
  metric?: string;
  maxDistance?: string;
  embeddingFrames: string;
  threads: string;
  logLevel?: string;
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new StreamsegError('E_CONFIG', `${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** `streamseg eval`: mIoU of base, oracle, top-1 and merged adapters on held-out synthetic clips. */
export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('score adapter retrieval and merging (base, oracle, top-1, uniform, distance-weighted) by mIoU per condition')
    .addOption(new Option('--data <dir>', 'a test set in the stills layout (meta.jsonl, images/, masks/ with class-index PNGs)').conflicts('seed'))
    .option('--seed <n>', `render the test set from this seed (default ${DEFAULT_EVAL_SEED}, never used in training)`)
    .option('--json', 'print one JSON object instead of the table', false)
    .option('--model <dir>', 'model package directory (STREAMSEG_MODEL)')
    .option('--clips <n>', 'rendered clips (scenes) per condition', '6')
    .option('--frames <n>', 'frames per rendered clip', '4')
    .option('--conditions <list>', `comma-separated conditions to render (default: ${DEFAULT_EVAL_CONDITIONS.join(',')})`)
    .option('--top-k <n>', 'adapters merged (retrieval topK)')
    .option('--tau <t>', 'softmax temperature of the distance weights')
    .option('--weighting <w>', 'softmax | inverse | uniform')
    .option('--metric <m>', 'cosine | l2')
    .option('--max-distance <d>', 'adapters farther than this are not merged (the base model runs when none is within)')
    .option('--embedding-frames <n>', 'frames a clip embedding averages', '4')
    .option('--threads <n>', 'ONNX Runtime threads (0: ORT decides)', '0')
    .option('--log-level <level>', 'LOG_LEVEL', 'warn')
    .action(async (flags: EvalFlags) => {
      try {
        const config = configFromFlags({ model: flags.model, logLevel: flags.logLevel });
        const logger = createLogger(config.logLevel);
        const pkg = await loadModelPackage(config.modelDir);
        const retrieval = retrievalOverridesSchema.parse({
          ...(flags.topK ? { topK: Number(flags.topK) } : {}),
          ...(flags.tau ? { temperature: Number(flags.tau) } : {}),
          ...(flags.weighting ? { weighting: flags.weighting } : {}),
          ...(flags.metric ? { metric: flags.metric } : {}),
          ...(flags.maxDistance ? { maxDistance: Number(flags.maxDistance) } : {}),
        });
        const { width, height } = pkg.manifest.input;
        const progress = (what: string) => (done: number, total: number) => {
          if (process.stderr.isTTY) process.stderr.write(`\r${what} ${done}/${total}${done === total ? '\n' : ''}`);
        };
        const clips = flags.data
          ? await loadTestSet(flags.data, width, height)
          : renderTestSet({
              seed: flags.seed === undefined ? DEFAULT_EVAL_SEED : positiveInt(flags.seed, '--seed'),
              conditions: flags.conditions ? flags.conditions.split(',').map((c) => c.trim()).filter(Boolean) : DEFAULT_EVAL_CONDITIONS,
              clips: positiveInt(flags.clips, '--clips'),
              frames: positiveInt(flags.frames, '--frames'),
              width,
              height,
              modelClasses: pkg.manifest.classes.map((c) => c.name),
              onClip: progress('rendering clips'),
            });
        const report = await evaluateAdapters({
          pkg,
          clips,
          retrieval,
          embeddingFrames: positiveInt(flags.embeddingFrames, '--embedding-frames'),
          intraOpThreads: Number(flags.threads) || 0,
          logger,
          onClip: progress('evaluating clips'),
        });
        process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${formatEvalTable(report)}\n`);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
