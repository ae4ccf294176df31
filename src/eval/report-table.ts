import type { EvalCell, EvalMethod, EvalReport } from './evaluate.js';

const COLUMNS: readonly [EvalMethod, string][] = [
  ['base', 'base'],
  ['top1', 'top-1'],
  ['uniform', 'uniform'],
  ['weighted', 'weighted'],
  ['weightedCat', 'weighted-cat'],
  ['guarded', 'guarded'],
  ['oracle', 'oracle'],
  ['oracleSingles', 'oracle-singles'],
  ['componentOracle', 'component-oracle'],
];

const pct = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '—' : (100 * v).toFixed(1));

function mean(values: readonly number[]): number | undefined {
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(header.map((_, i) => '-'.repeat(widths[i]!))), ...rows.map(line)];
}

/** Checks of the quality bar, computed from a report (null: the report has no cells for it). */
export interface QualityChecks {
  /** Base mIoU on clear per size. */
  clearBase: Record<string, number>;
  /** Smallest gain (points) of a condition's own adapter over base, per size. */
  minOwnGain: Record<string, number>;
  /** Compositions where the product's merge (weighted-cat) does not beat base, per size. */
  compositionsNotBeatingBase: Record<string, string[]>;
  /** Mean over compositions of weighted-cat minus top-1 (points), per size. */
  compositionsVsTop1: Record<string, number>;
  /** Unseen styles: the product's merge minus base (points), per style cell. */
  stylesVsBase: Record<string, number>;
  retrievalAccuracy: number | null;
}

export function qualityChecks(report: EvalReport): QualityChecks {
  const bySize = new Map<string, EvalCell[]>();
  for (const c of report.cells) bySize.set(c.size, [...(bySize.get(c.size) ?? []), c]);
  const checks: QualityChecks = {
    clearBase: {},
    minOwnGain: {},
    compositionsNotBeatingBase: {},
    compositionsVsTop1: {},
    stylesVsBase: {},
    retrievalAccuracy: null,
  };
  for (const [size, cells] of bySize) {
    const plain = cells.filter((c) => !c.style);
    const clear = plain.find((c) => c.condition === 'clear');
    if (clear?.miou.base !== undefined) checks.clearBase[size] = clear.miou.base;
    const gains = plain
      .filter((c) => !c.composition && c.condition !== 'clear' && c.miou.oracle !== undefined)
      .map((c) => 100 * (c.miou.oracle! - c.miou.base!));
    if (gains.length > 0) checks.minOwnGain[size] = Math.min(...gains);
    const comps = plain.filter((c) => c.composition);
    if (comps.length > 0) {
      checks.compositionsNotBeatingBase[size] = comps.filter((c) => !((c.miou.weightedCat ?? 0) > (c.miou.base ?? 0))).map((c) => c.condition);
      checks.compositionsVsTop1[size] = mean(comps.map((c) => 100 * ((c.miou.weightedCat ?? 0) - (c.miou.top1 ?? 0)))) ?? 0;
    }
    for (const c of cells.filter((c) => c.style)) checks.stylesVsBase[`${c.condition}@${size}`] = 100 * ((c.miou.weightedCat ?? 0) - (c.miou.base ?? 0));
  }
  const r = report.retrieval;
  checks.retrievalAccuracy = r.total === 0 ? null : r.hits / r.total;
  return checks;
}

/** The report as one fixed-width table per size (mIoU in %), then the quality checks. */
export function formatEvalReport(report: EvalReport): string {
  const s = report.settings;
  const r = s.retrieval;
  const out: string[] = [
    `streamseg eval: mIoU (%) at source resolution through the product's path (decode, scene cuts, resize, per-scene retrieval, engine, upscaling)`,
    `model ${s.model}; retrieval ${r.metric}, top-${r.topK}, ${r.weighting}, max distance ${r.maxDistance ?? '—'}, merge ${r.method}; embedding from ${s.embeddingFrames} frames; ${s.videos} videos, ${s.frames} frames, ${s.seconds}s`,
  ];
  const sizes = [...new Set(report.cells.map((c) => `${c.size} → ${c.input}`))];
  for (const size of sizes) {
    const cells = report.cells.filter((c) => `${c.size} → ${c.input}` === size);
    const used = COLUMNS.filter(([m]) => cells.some((c) => c.miou[m] !== undefined));
    const belowBase = cells.some((c) => c.scenesBelowBase !== undefined);
    const rows = cells.map((c) => [
      c.condition,
      ...used.map(([m]) => pct(c.miou[m])),
      ...(belowBase ? [c.scenesBelowBase === undefined ? '—' : `${c.scenesBelowBase}/${c.scenes}`] : []),
      Object.entries(c.mix)
        .slice(0, 3)
        .map(([a, w]) => `${a} ${w.toFixed(2)}`)
        .join(', '),
    ]);
    const comps = cells.filter((c) => c.composition && !c.style);
    if (comps.length > 0) {
      const below = comps.reduce((n, c) => n + (c.scenesBelowBase ?? 0), 0);
      const scenes = comps.reduce((n, c) => n + c.scenes, 0);
      rows.push([
        'compositions (mean)',
        ...used.map(([m]) => pct(mean(comps.map((c) => c.miou[m]).filter((v): v is number => v !== undefined)))),
        ...(belowBase ? [`${below}/${scenes}`] : []),
        '',
      ]);
    }
    const header = ['condition', ...used.map(([, h]) => h), ...(belowBase ? ['scenes < base'] : []), 'retrieved (product)'];
    out.push('', `source ${size} (model input)`, ...table(header, rows));
  }
  const checks = qualityChecks(report);
  const sizeLine = (rec: Record<string, number>, digits = 1) =>
    Object.entries(rec)
      .map(([k, v]) => `${k} ${v.toFixed(digits)}`)
      .join(', ');
  out.push(
    '',
    `base on clear: ${sizeLine(Object.fromEntries(Object.entries(checks.clearBase).map(([k, v]) => [k, 100 * v])))}`,
    `own adapter gain over base, worst condition (points): ${sizeLine(checks.minOwnGain)}`,
    `compositions where weighted-cat does not beat base: ${
      Object.entries(checks.compositionsNotBeatingBase)
        .map(([k, v]) => `${k} ${v.length === 0 ? 'none' : v.join('/')}`)
        .join(', ') || '—'
    }`,
    `weighted-cat minus top-1 on compositions, mean (points): ${sizeLine(checks.compositionsVsTop1) || '—'}`,
    `unseen styles, weighted-cat minus base (points): ${sizeLine(checks.stylesVsBase) || '—'}`,
    `retrieval accuracy (single adverse conditions, nearest adapter = own): ${checks.retrievalAccuracy === null ? '—' : `${(100 * checks.retrievalAccuracy).toFixed(1)}% (${report.retrieval.hits}/${report.retrieval.total})`}`,
    `weighted = the product's retrieval with a linear merge; weighted-cat = the product's retrieval and merge (what streamseg run does); scenes < base = the cell's scenes on which weighted-cat scored below base; uniform = top-k, equal weights, linear; oracle = own adapter; oracle-singles = best single adapter in hindsight; component-oracle = the true components merged`,
  );
  return out.join('\n');
}
