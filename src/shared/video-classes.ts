import { ConfigError } from './errors/index.js';
import type { ModelManifest } from './model-manifest.js';

/**
 * Refuses a video's `classes` that the model does not know, before anything is queued: otherwise
 * every frames job of the video would fail on them, one by one, after the video was accepted.
 * `option` names the setting as the user wrote it (`--classes` on the command line, `classes` in
 * the API). One problem line naming the unknown classes and the model's.
 */
export function assertClassesInModel(classes: readonly string[] | undefined, manifest: ModelManifest, option: string): void {
  if (!classes) return;
  const known = new Set(manifest.classes.map((c) => c.name));
  const unknown = [...new Set(classes)].filter((name) => !known.has(name));
  if (unknown.length === 0) return;
  const names = unknown.map((name) => JSON.stringify(name)).join(', ');
  throw new ConfigError([
    `${option}: ${names} ${unknown.length === 1 ? 'is' : 'are'} not in the model (its classes: ${manifest.classes.map((c) => c.name).join(', ')})`,
  ]);
}
