import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { createLogger } from '../../shared/logger.js';
import { loadModelPackage } from '../../shared/model-manifest.js';
import { EVAL_METHODS, evaluateVideos, type EvalMethod } from '../../eval/evaluate.js';
import { DEFAULT_EVAL_CONDITIONS, DEFAULT_EVAL_SEED, DEFAULT_EVAL_SIZES, UNSEEN_STYLES, renderEvalVideos } from '../../eval/eval-videos.js';
import { formatEvalReport } from '../../eval/report-table.js';
import { retrievalDefaultsFromConfig } from '../../shared/config.js';
import { retrievalOverridesSchema } from '../../workers/adapters/retrieval.js';
import { exitWithError } from '../exit.js';
import { configFromFlags } from '../options.js';

interface EvalFlags {
  seed?: string;
  json: boolean;
  model?: string;
  sizes: string;
  conditions?: string;
  scenes: string;
  clearScenes: string;
  compositionScenes: string;
  frames: string;
  styles: string;
  styleSizes: string;
  methods?: string;
  topK?: string;
  weighting?: string;
  maxDistance?: string;
  merge?: string;
  keep?: string;
  threads: string;
  logLevel?: string;
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new StreamsegError(ErrorCode.CONFIG, `${flag} must be a positive integer, got "${value}"`);
  return n;
}

const list = (text: string | undefined): string[] =>
  (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** `streamseg eval`: segmentation quality through the product's path on held-out synthetic videos. */
export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description(
      "render held-out synthetic videos at users' sizes and score the masks the product path produces (base, top-1, merges, oracles) by mIoU per condition and size",
    )
    .option('--seed <n>', `render the videos from this seed (default ${DEFAULT_EVAL_SEED}, never used in training)`)
    .option('--json', 'print one JSON object instead of the tables', false)
    .option('--model <dir>', 'model package directory (STREAMSEG_MODEL)')
    .option('--sizes <list>', 'source sizes WxH, comma-separated', DEFAULT_EVAL_SIZES.join(','))
    .option('--conditions <list>', `conditions (default: ${DEFAULT_EVAL_CONDITIONS.join(',')})`)
    .option('--scenes <n>', 'scenes (street layouts) per condition and size', '4')
    .option('--clear-scenes <n>', 'scenes of clear per size (base on clear is what sizes are compared by); at least --scenes', '8')
    .option(
      '--composition-scenes <n>',
      'scenes of each composition per size (the held-out target; a few scenes leave a cell to the layouts drawn); at least --scenes',
      '12',
    )
    .option('--frames <n>', 'frames per scene (at least 8)', '8')
    .option(
      '--styles <list>',
      `unseen styles over clear and adverse scenes (of: ${Object.keys(UNSEEN_STYLES).join(', ')}; "" for none)`,
      Object.keys(UNSEEN_STYLES).join(','),
    )
    .option('--style-sizes <list>', 'sizes the styled videos are rendered at', '640x360')
    .option('--methods <list>', `methods to score (default: all of ${EVAL_METHODS.join(', ')})`)
    .option('--top-k <n>', 'adapters merged (retrieval topK)')
    .option('--weighting <w>', 'softmax | inverse | uniform')
    .option('--max-distance <d>', 'adapters farther than this are not merged')
    .option('--merge <m>', 'linear | cat | svd (the product merge, scored as weighted-cat)')
    .option('--keep <dir>', 'render the videos into DIR and keep them (default: a temp dir, removed)')
    .option('--threads <n>', 'ONNX Runtime threads (0: ORT decides)', '0')
    .option('--log-level <level>', 'LOG_LEVEL', 'warn')
    .action(async (flags: EvalFlags) => {
      let tempDir: string | undefined;
      try {
        const config = configFromFlags({ model: flags.model, logLevel: flags.logLevel });
        const logger = createLogger(config.logLevel);
        const pkg = await loadModelPackage(config.modelDir);
        const retrieval = retrievalOverridesSchema.parse({
          ...retrievalDefaultsFromConfig(config),
          ...(flags.topK ? { topK: Number(flags.topK) } : {}),
          ...(flags.weighting ? { weighting: flags.weighting } : {}),
          ...(flags.maxDistance ? { maxDistance: Number(flags.maxDistance) } : {}),
          ...(flags.merge ? { method: flags.merge } : {}),
        });
        const methods = flags.methods ? list(flags.methods) : [...EVAL_METHODS];
        for (const m of methods) {
          if (!(EVAL_METHODS as readonly string[]).includes(m))
            throw new StreamsegError(ErrorCode.CONFIG, `--methods: unknown method "${m}" (one of ${EVAL_METHODS.join(', ')})`);
        }
        const frames = positiveInt(flags.frames, '--frames');
        if (frames < 8) throw new StreamsegError(ErrorCode.CONFIG, `--frames must be at least 8 (a scene's shortest length), got ${frames}`);
        const dir = flags.keep ? path.resolve(flags.keep) : (tempDir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-eval-')));
        const progress = (what: string) => (done: number, total: number) => {
          if (process.stderr.isTTY) process.stderr.write(`\r${what} ${done}/${total}${done === total ? '\n' : ''}`);
        };
        const videos = await renderEvalVideos({
          dir,
          sizes: list(flags.sizes),
          conditions: flags.conditions ? list(flags.conditions) : DEFAULT_EVAL_CONDITIONS,
          scenesPerCondition: positiveInt(flags.scenes, '--scenes'),
          clearScenes: positiveInt(flags.clearScenes, '--clear-scenes'),
          compositionScenes: positiveInt(flags.compositionScenes, '--composition-scenes'),
          framesPerScene: frames,
          seed: flags.seed === undefined ? DEFAULT_EVAL_SEED : positiveInt(flags.seed, '--seed'),
          styles: list(flags.styles),
          styleConditions: ['clear', 'fog', 'night', 'rain', 'snow', 'dusk'],
          styleSizes: list(flags.styleSizes),
          onVideo: progress('rendering videos'),
        });
        const report = await evaluateVideos({
          pkg,
          videos,
          retrieval,
          embeddingFrames: 4,
          sceneThreshold: config.sceneThreshold,
          minSceneFrames: config.minSceneFrames,
          batchFrames: config.batchFrames,
          methods: methods as EvalMethod[],
          intraOpThreads: Number(flags.threads) || 0,
          logger,
          onVideo: progress('evaluating videos'),
        });
        process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${formatEvalReport(report)}\n`);
        if (tempDir) await rm(tempDir, { recursive: true, force: true });
        process.exit(0);
      } catch (error) {
        if (tempDir) await rm(tempDir, { recursive: true, force: true }).catch(() => undefined);
        exitWithError(error);
      }
    });
}
