import path from 'node:path';
import { Option, type Command } from 'commander';
import { ErrorCode, ModelError, StreamsegError } from '../../shared/errors/index.js';
import { loadModelPackage } from '../../shared/model-manifest.js';
import { createRedis, waitForRedisReady } from '../../shared/redis.js';
import { AdapterRegistry, addRuntimeAdapter } from '../../workers/adapters/adapter-registry.js';
import { exitWithError } from '../exit.js';
import { configFromFlags } from '../options.js';
import { runPythonScript } from './python-script.js';

export interface TrainFlags {
  model?: string;
  from: string;
  labels?: string;
  name: string;
  condition?: string;
  rank?: string;
  alpha?: string;
  targets?: string;
  steps?: string;
  seconds?: string;
  batch?: string;
  lr?: string;
  maxFrames?: string;
  teacher?: string;
  teacherView?: string;
  threshold?: string;
  classQuantile?: string;
  threads?: string;
  seed?: string;
  force?: boolean;
  publish?: boolean;
  json?: boolean;
}

export interface TrainResult {
  report: Record<string, unknown>;
  /** Whether the adapter was also published to the cluster's Redis (REDIS_URL). */
  published: boolean;
}

/**
 * Trains a LoRA adapter for a model package (training/train_adapter.py: supervised with
 * `labels`, self-training without), which writes it into the package's adapters/ with its
 * centroid in adapters/index.json; then checks that the adapter registry loads it, and when
 * REDIS_URL is set publishes it so running workers retrieve it with no restart.
 */
export async function trainAdapter(flags: TrainFlags): Promise<TrainResult> {
  const config = configFromFlags({ model: flags.model, logLevel: 'warn' });
  const pkg = await loadModelPackage(config.modelDir);
  if (!pkg.manifest.adapters || !pkg.manifest.embedder) {
    throw new ModelError(
      ErrorCode.MODEL_MANIFEST,
      `${pkg.dir}/model.json has no "adapters" or "embedder": adapters train needs both (streamseg model import writes them)`,
    );
  }
  const args = ['--model', path.resolve(pkg.dir), '--from', path.resolve(flags.from), '--name', flags.name];
  const pass = (flag: string, value: string | undefined) => value !== undefined && args.push(flag, value);
  if (flags.labels) pass('--labels', path.resolve(flags.labels));
  pass('--condition', flags.condition);
  pass('--rank', flags.rank);
  pass('--alpha', flags.alpha);
  pass('--targets', flags.targets);
  pass('--steps', flags.steps);
  pass('--seconds', flags.seconds);
  pass('--batch', flags.batch);
  pass('--lr', flags.lr);
  pass('--max-frames', flags.maxFrames);
  pass('--teacher', flags.teacher);
  pass('--teacher-view', flags.teacherView);
  pass('--threshold', flags.threshold);
  pass('--class-quantile', flags.classQuantile);
  pass('--threads', flags.threads);
  pass('--seed', flags.seed);
  if (flags.force) args.push('--force');
  const { json: report } = await runPythonScript('train_adapter.py', args);

  // The workers' loader must accept what was written (shapes, config, centroid size).
  const registry = await AdapterRegistry.open({ pkg });
  await registry.close();
  const refused = registry.problems().find((p) => p.name === flags.name);
  if (refused) throw new StreamsegError(ErrorCode.ADAPTER_FILE, `the trained adapter is refused by the registry: ${refused.error}`);
  if (!registry.entries().some((e) => e.name === flags.name))
    throw new StreamsegError(ErrorCode.ADAPTER_FILE, `adapter ${flags.name} is not in ${pkg.manifest.adapters.index}`);

  let published = false;
  if (config.redisUrl && flags.publish !== false) {
    const redis = createRedis(config.redisUrl, { purpose: 'producer', connectionName: 'streamseg-adapters-train' });
    try {
      await waitForRedisReady(redis, config.redisUrl);
      await addRuntimeAdapter(redis, pkg, {
        dir: String(report.adapter ?? path.join(pkg.dir, pkg.manifest.adapters.dir, flags.name)),
        name: flags.name,
        centroids: [report.centroid as number[]],
        condition: flags.condition,
      });
      published = true;
    } finally {
      redis.disconnect();
    }
  }
  return { report, published };
}

/** `streamseg adapters train`, registered under `streamseg adapters`. */
export function registerAdaptersTrainCommand(adapters: Command): void {
  adapters
    .command('train')
    .description(
      'train a LoRA adapter from your own footage: supervised with --labels, self-training (no labels) without; it lands in the package with its centroid, and in every worker when REDIS_URL is set',
    )
    .requiredOption('--from <video|dir>', 'a video, or a directory of images, of the domain (e.g. one camera)')
    .option('--labels <dir>', 'class-index mask PNGs (255 = ignore): NNNNNN.png per video frame index, or named like the images')
    .requiredOption('--name <name>', 'adapter name')
    .addOption(new Option('--model <dir>', 'model package directory (STREAMSEG_MODEL)'))
    .option('--condition <label>', 'a label for reports (e.g. fog, camera-3)')
    .option('--rank <r>', 'LoRA rank', '4')
    .option('--alpha <a>', 'lora_alpha (default: the rank, so scaling 1)')
    .option('--targets <regex>', 'train only LoRA targets whose module matches')
    .option('--steps <n>', 'optimisation steps', '150')
    .option('--seconds <s>', 'stop after this many seconds of training')
    .option('--batch <n>', 'frames per step', '4')
    .option('--lr <lr>', 'learning rate (AdamW)', '0.001')
    .option('--max-frames <n>', 'frames sampled evenly from the footage', '64')
    .addOption(new Option('--teacher <which>', 'self-training teacher').choices(['base', 'ema']).default('ema'))
    .addOption(
      new Option(
        '--teacher-view <view>',
        "self-training: what the teacher sees; normalized = each frame's per-channel mean/std set to the model's input normalisation (undoes haze and darkness in part)",
      )
        .choices(['raw', 'normalized'])
        .default('normalized'),
    )
    .option('--threshold <p>', 'self-training: pseudo-label confidence threshold', '0.9')
    .option('--class-quantile <q>', 'self-training: per class, keep at least this quantile of its pixels by confidence', '0.5')
    .option('--threads <n>', 'torch threads', '1')
    .option('--seed <n>', 'random seed', '0')
    .option('--force', 'replace an adapter of the same name', false)
    .option('--no-publish', 'do not publish to REDIS_URL even when it is set')
    .option('--json', 'print only the training report as one JSON line', false)
    .action(async (flags: TrainFlags) => {
      try {
        const { report, published } = await trainAdapter(flags);
        if (flags.json) process.stdout.write(`${JSON.stringify({ ...report, published })}\n`);
        else {
          process.stdout.write(
            `adapter ${flags.name}: ${String(report.mode)}, ${String(report.steps)} steps, loss ${String(report.lossFirst)} → ${String(report.lossLast)}; in ${String(report.adapter)}` +
              `${published ? ', published to every worker (REDIS_URL)' : ' (package index; workers started from now on retrieve it)'}\n`,
          );
        }
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
