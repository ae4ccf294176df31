/**
 * Sweeps retrieval settings (τ, top-k, weighting, metric) on one rendered test set and prints,
 * per setting, the held-out composition means of the merges next to base and top-1, the
 * smallest margin of each weighted merge over the base, and retrieval accuracy. Used to choose
 * the defaults in src/shared/retrieval-options.ts.
 *
 *   npx tsx bench/adapters-eval-sweep.ts [--model models/default] [--seed S] [--clips 6] [--frames 4]
 */
import { parseArgs } from 'node:util';
import { acceptance, evaluateAdapters, heldOutMeans, type EvalReport } from '../src/eval/evaluate.js';
import { DEFAULT_EVAL_CONDITIONS, DEFAULT_EVAL_SEED, renderTestSet } from '../src/eval/test-set.js';
import { createLogger } from '../src/shared/logger.js';
import { loadModelPackage } from '../src/shared/model-manifest.js';
import type { RetrievalOverrides } from '../src/shared/retrieval-options.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/default' },
    seed: { type: 'string', default: String(DEFAULT_EVAL_SEED) },
    clips: { type: 'string', default: '6' },
    frames: { type: 'string', default: '4' },
    settings: { type: 'string' },
  },
});
const pkg = await loadModelPackage(values.model);
const logger = createLogger('warn');
const started = performance.now();
const clips = renderTestSet({
  seed: Number(values.seed),
  conditions: DEFAULT_EVAL_CONDITIONS,
  clips: Number(values.clips),
  frames: Number(values.frames),
  width: pkg.manifest.input.width,
  height: pkg.manifest.input.height,
  modelClasses: pkg.manifest.classes.map((c) => c.name),
});
console.log(`${clips.length} clips rendered in ${((performance.now() - started) / 1000).toFixed(0)} s`);

const settings: RetrievalOverrides[] = values.settings
  ? (JSON.parse(values.settings) as RetrievalOverrides[])
  : [
      { topK: 2, weighting: 'softmax', temperature: 0.01 },
      { topK: 2, weighting: 'softmax', temperature: 0.02 },
      { topK: 2, weighting: 'softmax', temperature: 0.05 },
      { topK: 2, weighting: 'softmax', temperature: 0.1 },
      { topK: 3, weighting: 'softmax', temperature: 0.02 },
      { topK: 3, weighting: 'softmax', temperature: 0.05 },
      { topK: 2, weighting: 'inverse' },
      { topK: 3, weighting: 'inverse' },
    ];

const pct = (v: number | undefined) => (v === undefined ? '  —  ' : (100 * v).toFixed(1).padStart(5));
let first: EvalReport | undefined;
for (const retrieval of settings) {
  const report = await evaluateAdapters({
    pkg,
    clips,
    retrieval,
    logger,
    methods: first ? ['uniform', 'weighted', 'weightedCat'] : undefined,
  });
  if (!first) first = report;
  // base / top-1 do not depend on the weights: take them from the first run
  for (const c of report.conditions) {
    const ref = first.conditions.find((f) => f.name === c.name)!;
    c.miou.base = ref.miou.base;
    c.miou.top1 = ref.miou.top1;
    if (ref.miou.oracle !== undefined) c.miou.oracle = ref.miou.oracle;
  }
  const means = heldOutMeans(report);
  const held = report.conditions.filter((c) => c.heldOut);
  const margin = (m: 'weighted' | 'weightedCat') => Math.min(...held.map((c) => c.miou[m] - c.miou.base));
  // Unadapted scenes: adapters should leave them alone (maxDistance → base).
  const clear = report.conditions.find((c) => c.name === 'clear');
  const lin = acceptance(report, 'weighted');
  const cat = acceptance(report, 'weightedCat');
  console.log(
    `${JSON.stringify(retrieval).padEnd(56)} held-out: base ${pct(means.base)} top1 ${pct(means.top1)} uniform ${pct(means.uniform)} weighted ${pct(means.weighted)} cat ${pct(means.weightedCat)} | min Δbase lin ${pct(margin('weighted'))} cat ${pct(margin('weightedCat'))} | accept lin ${lin.beatsBaseEverywhere && lin.beatsTop1OnAverage ? 'yes' : 'no '} cat ${cat.beatsBaseEverywhere && cat.beatsTop1OnAverage ? 'yes' : 'no '} | retrieval ${pct(report.retrievalAccuracy ?? undefined)}% | clear base ${pct(clear?.miou.base)} cat ${pct(clear?.miou.weightedCat)}`,
  );
}
