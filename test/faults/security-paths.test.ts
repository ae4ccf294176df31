import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VideoView } from '../../src/api/services/video-view.js';
import { ServerPathScrubber } from '../../src/api/server-path-scrubber.js';
import { makeTestVideo } from '../helpers/media.js';
import { auth, eventually, readSse, startApiStack, type ApiStack } from '../api/stack.js';

/** Issue 18, finding 6: no server paths in what the API says; uploads deleted after their video finished. */
describe('server paths and upload retention (issue 18)', () => {
  let stack: ApiStack;
  let clip: string;
  const uploadDir = () => path.join(stack.config.outDir, 'uploads');
  const upload = async (bytes: Uint8Array) => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(bytes)]), 'clip.mp4');
    form.append('adapters', 'false');
    const response = await fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
    expect(response.status).toBe(201);
    return ((await response.json()) as { id: string }).id;
  };
  const finished = (id: string) =>
    eventually(async () => {
      const v = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
      return v.status === 'done' || v.status === 'failed' ? v : undefined;
    }, `video ${id} to finish`);

  beforeAll(async () => {
    stack = await startApiStack({ uploadRetentionSeconds: 1 });
    clip = path.join(stack.dir, 'clip.mp4');
    await makeTestVideo(clip, { width: 64, height: 48, fps: 10, framesPerScene: [4, 4], video: ['libx264', '-pix_fmt', 'yuv420p'] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it("a failed upload's error names the problem, not the upload directory (status, list, events)", async () => {
    const id = await upload(new Uint8Array(4096).fill(7));
    const view = await finished(id);
    expect(view.status).toBe('failed');
    expect(view.error).toMatch(/^E_INPUT/);
    const said = [
      view.error!,
      await (await fetch(`${stack.url}/v1/videos`, { headers: auth() })).text(),
      JSON.stringify(await readSse(await fetch(`${stack.url}/v1/videos/${id}/events`, { headers: auth() }))),
    ];
    for (const text of said) {
      expect(text).not.toContain(stack.dir);
      expect(text).not.toMatch(/\/tmp\//);
    }
  });

  it('an upload is deleted STREAMSEG_UPLOAD_RETENTION_SECONDS after its video finished; the outputs stay', async () => {
    const id = await upload(new Uint8Array(await readFile(clip)));
    expect((await readdir(uploadDir())).some((name) => name.startsWith(id))).toBe(true);
    expect((await finished(id)).status).toBe('done');
    await eventually(async () => ((await readdir(uploadDir())).some((name) => name.startsWith(id)) ? undefined : true), 'the upload to be deleted', 15_000);
    expect((await fetch(`${stack.url}/v1/videos/${id}/report.json`, { headers: auth() })).status).toBe(200);
  });

  it('the scrubber keeps URLs and API paths, and takes out filesystem paths', () => {
    const scrubber = new ServerPathScrubber([{ dir: '/srv/streamseg/uploads', label: '<uploads>' }]);
    expect(scrubber.scrub('E_INPUT_NOT_VIDEO: /srv/streamseg/uploads/vabc.mp4 is not a video')).toBe('E_INPUT_NOT_VIDEO: <uploads>/vabc.mp4 is not a video');
    expect(scrubber.scrub("ENOENT: no such file or directory, open '/var/lib/x/y.json'")).toBe("ENOENT: no such file or directory, open '…/y.json'");
    expect(scrubber.scrub('http://host/tmp/a.mp4: 404; no route GET /v1/videos/x')).toBe('http://host/tmp/a.mp4: 404; no route GET /v1/videos/x');
  });
});
