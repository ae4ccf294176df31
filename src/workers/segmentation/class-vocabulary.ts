import ort from 'onnxruntime-node';
import { JobPayloadError } from '../../shared/errors/index.js';
import type { ModelManifest } from '../../shared/model-manifest.js';
import { QueueName } from '../../shared/queues.js';

/** The classes one job asks for, ready to feed, and how to map the logits back. */
export interface Vocabulary {
  /** [C, D] rows = the job's classes, in the job's order. */
  embeddings: ort.Tensor;
  /** Logit channel c → index in manifest.classes. */
  modelClassOf: Uint8Array;
}

/**
 * Builds the `class_embeddings` input for a job's vocabulary. Jobs of one video share a
 * vocabulary, so the few distinct ones are kept (tensors are read-only once fed).
 */
export class ClassVocabulary {
  private readonly cache = new Map<string, Vocabulary>();
  private readonly indexOf: Map<string, number>;

  constructor(private readonly manifest: ModelManifest) {
    this.indexOf = new Map(manifest.classes.map((c, i) => [c.name, i]));
  }

  /** `classes` unset = every class of the model. Unknown names are refused (E_JOB_PAYLOAD). */
  forJob(classes?: readonly string[]): Vocabulary {
    const key = classes ? classes.join('\u0000') : '';
    const cached = this.cache.get(key);
    if (cached) return cached;
    const names = classes ? [...new Set(classes)] : this.manifest.classes.map((c) => c.name);
    const unknown = names.filter((n) => !this.indexOf.has(n));
    if (unknown.length > 0) {
      throw new JobPayloadError(
        QueueName.Frames,
        `classes: ${unknown.map((n) => `"${n}"`).join(', ')} not in the model (it knows ${this.manifest.classes.map((c) => c.name).join(', ')})`,
      );
    }
    const dim = this.manifest.classEmbeddings.dim;
    const data = new Float32Array(names.length * dim);
    const modelClassOf = new Uint8Array(names.length);
    names.forEach((name, row) => {
      const index = this.indexOf.get(name)!;
      modelClassOf[row] = index;
      data.set(this.manifest.classes[index]!.embedding, row * dim);
    });
    const vocabulary = { embeddings: new ort.Tensor('float32', data, [names.length, dim]), modelClassOf };
    // Bounded: a process sees few vocabularies, but a misbehaving client must not grow this forever.
    if (this.cache.size >= 64) this.cache.clear();
    this.cache.set(key, vocabulary);
    return vocabulary;
  }
}
