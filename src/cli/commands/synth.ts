import path from 'node:path';
import type { Command } from 'commander';
import { CONDITIONS, parseCondition } from '../../synth/conditions.js';
import { parseConditions, parseFps, parseIntFlag, parseIntensity, parseModelInput, parseSize, parseSizes } from '../../synth/options.js';
import { renderStills } from '../../synth/stills.js';
import { SynthError } from '../../synth/synth-error.js';
import { renderVideo } from '../../synth/video.js';
import { exitWithError } from '../exit.js';
import { ErrorCode } from '../../shared/errors/index.js';

interface SynthFlags {
  out?: string;
  stills?: string;
  frames: string;
  scenes: string;
  count: string;
  seed: string;
  size?: string;
  fps: string;
  conditions?: string;
  intensity?: string;
  supersample: string;
  workers?: string;
  modelInput?: string;
  sceneConditions?: string;
}

const ALL = CONDITIONS.map((c) => parseCondition(c)!);

export function registerSynthCommand(program: Command): void {
  program
    .command('synth')
    .description('render the synthetic street world: a video with per-frame masks (--out) or training stills (--stills)')
    .option('--out <file.mp4>', 'video mode: write an H.264 MP4, FILE.masks/*.png and FILE.scenes.json')
    .option('--stills <dir>', 'stills mode: write DIR/images, DIR/masks and DIR/meta.jsonl')
    .option('--frames <n>', 'video: number of frames', '120')
    .option('--scenes <k>', 'video: number of scenes (hard cuts between them), each >= 8 frames', '4')
    .option('--count <n>', 'stills: number of stills', '1000')
    .option('--seed <s>', 'random seed: same seed, same bytes', '1')
    .option(
      '--size <WxH>',
      'frame size (default 256x256 for video, 160x160 for stills); stills with --model-input: a comma-separated list to cycle through, all mapping to one model input size',
    )
    .option('--scene-conditions <list>', 'video: one scene per entry, in this order, e.g. clear,fog,fog+night (implies --scenes)')
    .option('--fps <n>', 'video: frame rate', '24')
    .option('--conditions <list>', `comma-separated, from: ${CONDITIONS.join(', ')} (default: all)`)
    .option('--intensity <v|lo-hi>', 'condition intensity or range in [0,1] (default: 0.5-1 for adverse conditions)')
    .option('--supersample <n>', 'samples per pixel per axis (antialiasing)', '2')
    .option(
      '--model-input <spec>',
      "stills: write each still as the model receives it, via planModelInput and the producer's resizer: fit:PIXELS:STRIDE:MAXSIDE[:SMALLSCALE] (e.g. fit:28672:16:448:1.4) or letterbox:WxH",
    )
    .option('--workers <n>', 'stills: worker threads (default: CPU count, at most 8)')
    .action(async (flags: SynthFlags) => {
      try {
        if (Boolean(flags.out) === Boolean(flags.stills)) {
          throw new SynthError(ErrorCode.SYNTH_OPTION, 'give exactly one of --out FILE.mp4 (video) or --stills DIR (training stills)');
        }
        const seed = parseIntFlag(flags.seed, '--seed', 0, 0xffffffff);
        const conditions = flags.conditions ? parseConditions(flags.conditions) : ALL;
        const intensity = flags.intensity ? parseIntensity(flags.intensity) : undefined;
        const supersample = parseIntFlag(flags.supersample, '--supersample', 1, 4);
        if (flags.stills) await stills(flags.stills, flags, { seed, conditions, intensity, supersample });
        else await video(flags.out ?? '', flags, { seed, conditions, intensity, supersample });
      } catch (error) {
        exitWithError(error);
      }
    });
}

interface Common {
  seed: number;
  conditions: ReturnType<typeof parseConditions>;
  intensity: readonly [number, number] | undefined;
  supersample: number;
}

async function stills(dir: string, flags: SynthFlags, common: Common): Promise<void> {
  const count = parseIntFlag(flags.count, '--count', 1, 10_000_000);
  const sizes = parseSizes(flags.size ?? '160x160');
  const { width, height } = sizes[0]!;
  const modelInput = flags.modelInput === undefined ? undefined : parseModelInput(flags.modelInput);
  const workers = flags.workers === undefined ? undefined : parseIntFlag(flags.workers, '--workers', 1, 64);
  const progress = progressLine('stills');
  const summary = await renderStills({ dir: path.resolve(dir), count, width, height, sizes, modelInput, workers, ...common, onProgress: progress });
  progress.end();
  const first = summary.metas[0];
  const written =
    first?.width !== undefined && (first.width !== width || first.height !== height)
      ? `${flags.size ?? '160x160'} → ${first.width}x${first.height}`
      : sizes.map((s) => `${s.width}x${s.height}`).join(',');
  process.stdout.write(
    `wrote ${summary.count} stills (${written}) to ${dir} in ${summary.seconds.toFixed(1)} s (${summary.stillsPerSecond.toFixed(1)} stills/s)\n`,
  );
}

async function video(out: string, flags: SynthFlags, common: Common): Promise<void> {
  if (flags.modelInput !== undefined)
    throw new SynthError(ErrorCode.SYNTH_OPTION, '--model-input applies to --stills only (a video is served at its own size; the producer resizes it)');
  const frames = parseIntFlag(flags.frames, '--frames', 8, 1_000_000);
  const sceneConditions = flags.sceneConditions === undefined ? undefined : parseConditions(flags.sceneConditions, '--scene-conditions');
  const scenes = sceneConditions ? sceneConditions.length : parseIntFlag(flags.scenes, '--scenes', 1, 100_000);
  if (frames < scenes * 8) {
    throw new SynthError(
      ErrorCode.SYNTH_OPTION,
      `--frames ${frames} is too few for --scenes ${scenes}: each scene needs >= 8 frames, so use --frames >= ${scenes * 8} or fewer --scenes`,
    );
  }
  const { width, height } = parseSize(flags.size ?? '256x256', '--size', { even: true });
  const fps = parseFps(flags.fps);
  const progress = progressLine('frames');
  const result = await renderVideo({ out: path.resolve(out), frames, scenes, width, height, fps, ...common, sceneConditions, onProgress: progress });
  progress.end();
  const weak = result.cutDistances.map((d, i) => ({ d, at: result.scenes[i + 1]!.startFrame })).filter((c) => c.d < 0.3);
  for (const cut of weak) {
    process.stderr.write(
      `synth: warning: the cut at frame ${cut.at} is weak (histogram distance ${cut.d.toFixed(2)}); a cut detector may miss it; give --conditions more than one condition or another --seed\n`,
    );
  }
  process.stdout.write(
    `wrote ${out} (${frames} frames, ${result.scenes.length} scenes, ${width}x${height} @ ${fps} fps), ${result.masksDir} and ${result.scenesPath} in ${result.seconds.toFixed(1)} s\n`,
  );
}

/** One updating progress line on a terminal; a line per 10% otherwise (logs stay short). */
function progressLine(unit: string): ((done: number, total: number) => void) & { end: () => void } {
  const started = performance.now();
  const tty = process.stderr.isTTY;
  let lastDecile = -1;
  let lastDraw = 0;
  const fn = (done: number, total: number): void => {
    const now = performance.now();
    const rate = done / Math.max(1e-3, (now - started) / 1000);
    const line = `synth: ${done}/${total} ${unit} (${rate.toFixed(1)}/s)`;
    if (tty) {
      if (now - lastDraw > 100 || done === total) {
        process.stderr.write(`\r${line}`);
        lastDraw = now;
      }
      return;
    }
    const decile = Math.floor((done * 10) / total);
    if (decile !== lastDecile) {
      lastDecile = decile;
      process.stderr.write(`${line}\n`);
    }
  };
  return Object.assign(fn, { end: () => (tty ? process.stderr.write('\n') : undefined) });
}
