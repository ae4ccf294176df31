import { describe, expect, it } from 'vitest';
import { JobPayloadError } from '../../src/shared/errors/index.js';
import { decodeVideoJobSchema, parseJob, segmentFramesJobSchema } from '../../src/shared/job-schemas.js';
import { resolveVideoInput } from '../../src/shared/video-submitter.js';

describe('job schemas', () => {
  it('accepts a well-formed frames job', () => {
    const job = parseJob(segmentFramesJobSchema, 'frames', {
      videoId: 'abc',
      scene: 0,
      sceneStartFrame: 0,
      frames: [{ index: 0, timestampMs: 0 }],
    });
    expect(job.frames).toHaveLength(1);
  });

  it('refuses path traversal in ids and names the field', () => {
    expect(() =>
      parseJob(segmentFramesJobSchema, 'frames', { videoId: '../etc', scene: 0, sceneStartFrame: 0, frames: [{ index: 0, timestampMs: 0 }] }),
    ).toThrow(/videoId/);
  });

  it('refuses URL schemes other than http, https, rtsp and udp', () => {
    const job = { videoId: 'a', input: { kind: 'url', url: 'file:///etc/passwd' }, options: { outDir: '/tmp/x' }, submittedAt: 1 };
    expect(() => parseJob(decodeVideoJobSchema, 'videos', job)).toThrow(JobPayloadError);
  });

  it('resolves inputs: rejects unknown schemes and missing files with their own codes', async () => {
    await expect(resolveVideoInput('concat:a.mp4|b.mp4')).rejects.toMatchObject({ code: 'E_INPUT_URL_SCHEME' });
    await expect(resolveVideoInput('/no/such/video.mp4')).rejects.toMatchObject({ code: 'E_INPUT_NOT_FOUND' });
    await expect(resolveVideoInput('rtsp://127.0.0.1:8554/cam')).resolves.toEqual({ kind: 'url', url: 'rtsp://127.0.0.1:8554/cam' });
  });
});
