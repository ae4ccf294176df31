import path from 'node:path';
import type { Command } from 'commander';
import { loadModelPackage } from '../../shared/model-manifest.js';
import {
  buildScoreReport,
  formatScoreTable,
  mapClasses,
  middleFrame,
  readTruthScenes,
  requireDir,
  requireFile,
  scoreRun,
  ScoreError,
  truthStem,
  writeScenePictures,
  type RunScore,
} from '../../eval/score-output.js';
import { exitWithError } from '../exit.js';
import { configFromFlags } from '../options.js';
import { ErrorCode } from '../../shared/errors/index.js';

interface ScoreFlags {
  truth?: string;
  scenes?: string;
  baseline?: string;
  pictures?: string;
  video?: string;
  model?: string;
  json: boolean;
}

const RUN_HINT = 'give the --out directory of a finished `streamseg run <video> --out DIR`';

/** Checks a run's output directory and returns its masks.ndjson. */
async function masksOf(dir: string, what: string): Promise<string> {
  await requireDir(dir, what, RUN_HINT);
  const file = path.join(dir, 'masks.ndjson');
  await requireFile(file, `masks of ${what}`, `run \`streamseg run <video> --out ${dir}\` first (or let it finish)`);
  return file;
}

/** `streamseg score`: mIoU of a run's masks against synth ground truth, per scene and overall. */
export function registerScoreCommand(program: Command): void {
  program
    .command('score')
    .description(
      'score the masks of a run (OUT/masks.ndjson) against synth ground truth: mIoU per ground-truth scene and over the whole video, with the adapters each scene used',
    )
    .argument('<out-dir>', 'output directory of `streamseg run` (holds masks.ndjson)')
    .option('--truth <masks-dir>', 'ground-truth masks: the FILE.masks directory `streamseg synth --out FILE.mp4` wrote')
    .option('--scenes <scenes.json>', 'ground-truth scenes (default: FILE.scenes.json next to the --truth directory)')
    .option('--baseline <out-dir>', 'a second run to compare with (e.g. `streamseg run --no-adapters`): adds mIoU base and gain')
    .option('--pictures <dir>', "write one PNG per scene: source | ground truth | prediction (the scene's middle frame)")
    .option('--video <source.mp4>', 'source video for --pictures (default: FILE.mp4 next to the --truth directory)')
    .option('--model <dir>', 'model package whose class names and palette the masks use (STREAMSEG_MODEL)')
    .option('--json', 'print one JSON object instead of the table', false)
    .action(async (outDir: string, flags: ScoreFlags) => {
      try {
        const masksFile = await masksOf(outDir, 'the run to score');
        if (!flags.truth) {
          throw new ScoreError(
            ErrorCode.SCORE_NOT_FOUND,
            'no ground truth given; pass --truth FILE.masks (the masks directory `streamseg synth --out FILE.mp4` wrote)',
          );
        }
        const truthDir = flags.truth;
        await requireDir(truthDir, 'ground-truth masks', 'give --truth the FILE.masks directory `streamseg synth --out FILE.mp4` wrote');
        const stem = truthStem(truthDir);
        const scenesFile = flags.scenes ?? `${stem}.scenes.json`;
        await requireFile(
          scenesFile,
          'ground-truth scenes',
          flags.scenes ? 'check the --scenes path' : 'give --scenes <scenes.json> (streamseg synth writes FILE.scenes.json next to FILE.masks)',
        );
        const baselineMasks = flags.baseline === undefined ? undefined : await masksOf(flags.baseline, 'the --baseline run');
        const video = flags.pictures === undefined ? undefined : (flags.video ?? `${stem}.mp4`);
        if (video !== undefined) {
          await requireFile(video, 'source video for --pictures', flags.video ? 'check the --video path' : 'give --video <source.mp4>');
        }

        const config = configFromFlags({ model: flags.model });
        const { manifest } = await loadModelPackage(config.modelDir);
        const truth = await readTruthScenes(scenesFile);
        const mapping = mapClasses(
          truth.classes,
          manifest.classes.map((c) => c.name),
        );
        const keep = video === undefined ? undefined : new Set(truth.scenes.map(middleFrame));
        const run = await scoreRun({ masksFile, truthDir, scenes: truth.scenes, mapping, keep });
        let baseline: RunScore | undefined;
        if (baselineMasks) baseline = await scoreRun({ masksFile: baselineMasks, truthDir, scenes: truth.scenes, mapping });
        const pictures =
          video === undefined || flags.pictures === undefined || run.size === null
            ? []
            : await writeScenePictures({
                dir: flags.pictures,
                video,
                truthDir,
                scenes: truth.scenes,
                mapping,
                palette: manifest.classes.map((c) => c.color),
                predictions: run.kept,
                size: run.size,
              });
        const report = buildScoreReport({ outDir, truthDir, baselineDir: flags.baseline, truth, mapping, run, baseline, pictures });
        process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${formatScoreTable(report)}\n`);
      } catch (error) {
        exitWithError(error);
      }
    });
}
