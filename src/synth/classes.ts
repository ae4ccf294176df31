/**
 * The synthetic world's label set. Index = position in `CLASSES`; masks store these
 * indices as 8-bit grey values. Palette colours follow Cityscapes where a class exists
 * there, so overlays look familiar.
 */
export const CLASS_NAMES = ['sky', 'road', 'sidewalk', 'building', 'vegetation', 'vehicle', 'person', 'pole'] as const;

export type ClassName = (typeof CLASS_NAMES)[number];

export interface SynthClass {
  readonly index: number;
  readonly name: ClassName;
  /** Distinct display colour (RGB 0-255) for overlays and contact sheets. */
  readonly color: readonly [number, number, number];
}

export const CLASSES: readonly SynthClass[] = [
  { index: 0, name: 'sky', color: [70, 130, 180] },
  { index: 1, name: 'road', color: [128, 64, 128] },
  { index: 2, name: 'sidewalk', color: [244, 35, 232] },
  { index: 3, name: 'building', color: [70, 70, 70] },
  { index: 4, name: 'vegetation', color: [107, 142, 35] },
  { index: 5, name: 'vehicle', color: [0, 0, 142] },
  { index: 6, name: 'person', color: [220, 20, 60] },
  { index: 7, name: 'pole', color: [250, 170, 30] },
];

/** Class indices by name, for the renderer's hot paths (no string lookups per pixel). */
export const C = {
  sky: 0,
  road: 1,
  sidewalk: 2,
  building: 3,
  vegetation: 4,
  vehicle: 5,
  person: 6,
  pole: 7,
} as const satisfies Record<ClassName, number>;

export const CLASS_COUNT = CLASSES.length;
