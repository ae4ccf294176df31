import { Option, type Command } from 'commander';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { loadModelPackage, type ModelPackage } from '../../shared/model-manifest.js';
import { createRedis, waitForRedisReady, type RedisConnection } from '../../shared/redis.js';
import { AdapterRegistry, addRuntimeAdapter, removeAdapter } from '../../workers/adapters/adapter-registry.js';
import { centroidFromMedia } from '../../workers/adapters/centroid-from-media.js';
import { exitWithError } from '../exit.js';
import { registerAdaptersTrainCommand } from './adapters-train.js';
import { configFromFlags } from '../options.js';

interface CommonFlags {
  model?: string;
}

function setup(flags: CommonFlags, needRedis: boolean): { modelDir: string; redisUrl?: string } {
  const config = configFromFlags({ model: flags.model, logLevel: 'warn' });
  if (needRedis && !config.redisUrl) {
    throw new StreamsegError(ErrorCode.CONFIG, "REDIS_URL is not set: run-time adapters live in the cluster's Redis, where every worker picks them up");
  }
  return { modelDir: config.modelDir, redisUrl: config.redisUrl };
}

async function withRedis<T>(url: string, fn: (redis: RedisConnection) => Promise<T>): Promise<T> {
  const redis = createRedis(url, { purpose: 'producer', connectionName: 'streamseg-adapters-cli' });
  try {
    await waitForRedisReady(redis, url);
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

function parseCentroid(text: string): number[] {
  const values = text.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v)))
    throw new StreamsegError(ErrorCode.CONFIG, `--centroid must be comma-separated numbers, got "${text}"`);
  return values;
}

async function listing(pkg: ModelPackage, redis?: RedisConnection) {
  const registry = await AdapterRegistry.open({ pkg, redis });
  await registry.close();
  return {
    adapters: registry.entries().map((e) => ({
      name: e.name,
      source: e.source,
      condition: e.condition ?? null,
      version: e.adapter.version,
      r: e.adapter.r,
      alpha: e.adapter.alpha,
      targets: e.adapter.targets.size,
      centroids: e.centroids.length,
    })),
    problems: registry.problems(),
  };
}

/** `streamseg adapters add|list|remove`: the adapters every worker retrieves from. */
export function registerAdaptersCommand(program: Command): void {
  const adapters = program.command('adapters').description('list, add and remove the LoRA adapters workers retrieve per scene');
  const modelOption = () => new Option('--model <dir>', 'model package directory (STREAMSEG_MODEL)');
  registerAdaptersTrainCommand(adapters);

  adapters
    .command('add')
    .description('validate a PEFT LoRA adapter directory and publish it to every worker (REDIS_URL), no restart needed')
    .argument('<dir>', 'adapter directory: adapter_config.json + adapter_model.safetensors')
    .option('--name <name>', 'adapter name (default: the directory name); an existing run-time adapter of that name is replaced')
    .option('--centroid-from <paths...>', "a video, image files, or directories of images of the adapter's domain: its centroid is their mean embedding")
    .option('--centroid <values>', 'the centroid itself, comma-separated (instead of --centroid-from)')
    .option('--condition <label>', 'a label for reports (e.g. fog)')
    .option('--max-frames <n>', 'most images/frames embedded for the centroid', '32')
    .addOption(modelOption())
    .action(async (dir: string, flags: CommonFlags & { name?: string; centroidFrom?: string[]; centroid?: string; condition?: string; maxFrames: string }) => {
      try {
        const { modelDir, redisUrl } = setup(flags, true);
        if (!flags.centroidFrom && !flags.centroid)
          throw new StreamsegError(
            ErrorCode.CONFIG,
            "give --centroid-from VIDEO|IMAGES (or --centroid v1,v2,…): retrieval needs the adapter's domain centroid",
          );
        const pkg = await loadModelPackage(modelDir);
        let centroid: number[];
        if (flags.centroid) centroid = parseCentroid(flags.centroid);
        else {
          const result = await centroidFromMedia(pkg, flags.centroidFrom!, { maxFrames: Number(flags.maxFrames) || 32 });
          centroid = result.centroid;
          process.stderr.write(`centroid from ${result.frames} image(s)\n`);
        }
        const added = await withRedis(redisUrl!, (redis) =>
          addRuntimeAdapter(redis, pkg, { dir, name: flags.name, centroids: [centroid], condition: flags.condition }),
        );
        process.stdout.write(`${added.replaced ? 'replaced' : 'added'} ${added.name} (version ${added.version})\n`);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });

  adapters
    .command('list')
    .description('adapters served (package + run-time), and any refused with the reason')
    .option('--json', 'print one JSON object', false)
    .addOption(modelOption())
    .action(async (flags: CommonFlags & { json: boolean }) => {
      try {
        const { modelDir, redisUrl } = setup(flags, false);
        const pkg = await loadModelPackage(modelDir);
        const result = redisUrl ? await withRedis(redisUrl, (redis) => listing(pkg, redis)) : await listing(pkg);
        if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else {
          if (!redisUrl) process.stderr.write("REDIS_URL is not set: showing the package's adapters only\n");
          const rows = result.adapters.map((a) => [a.name, a.source, a.condition ?? '', a.version, String(a.r), String(a.targets)]);
          const header = ['name', 'source', 'condition', 'version', 'r', 'targets'];
          const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
          for (const row of [header, ...rows])
            process.stdout.write(
              `${row
                .map((c, i) => c.padEnd(widths[i]!))
                .join('  ')
                .trimEnd()}\n`,
            );
          for (const p of result.problems) process.stdout.write(`refused ${p.name} (${p.source}): ${p.error}\n`);
        }
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });

  adapters
    .command('remove')
    .description('stop serving an adapter on every worker (a package adapter is hidden, a run-time one deleted)')
    .argument('<name>', 'adapter name')
    .addOption(modelOption())
    .action(async (name: string, flags: CommonFlags) => {
      try {
        const { modelDir, redisUrl } = setup(flags, true);
        const pkg = await loadModelPackage(modelDir);
        const removed = await withRedis(redisUrl!, (redis) => removeAdapter(redis, pkg, name));
        if (!removed) throw new StreamsegError(ErrorCode.ADAPTER_NOT_FOUND, `no adapter "${name}" is served (see streamseg adapters list)`);
        process.stdout.write(`removed ${name}\n`);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
