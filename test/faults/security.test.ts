import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { indices, readOutputs } from './helpers/pipeline.js';
import { RedisProcess } from './helpers/redis-process.js';
import { TEST_MODEL } from './helpers/roles.js';

const run = promisify(execFile);
const FRAMES = 20;
const PASSWORD = 'correct-horse-battery-staple';

/** `streamseg run` against the given Redis (all roles in one process), writing under `out`. */
function runVideo(input: string, out: string, env: NodeJS.ProcessEnv) {
  return runCli(['run', input, '--out', out, '--no-progress'], {
    STREAMSEG_MODEL: TEST_MODEL,
    STREAMSEG_INTRA_OP_THREADS: '1',
    STREAMSEG_METRICS_PUBLISH_MS: '0',
    ...env,
  });
}

describe('security: Redis AUTH and TLS from REDIS_URL, ffmpeg protocol whitelist, no shell', () => {
  let dir: string;
  let input: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-faults-sec-'));
    input = path.join(dir, 'clip.mp4');
    await makeTestVideo(input, { width: 96, height: 54, fps: 10, framesPerScene: [FRAMES / 2, FRAMES / 2], video: ['libx264', '-pix_fmt', 'yuv420p'] });
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('Redis AUTH: the password in REDIS_URL works; a wrong one fails with one line that does not print it', async () => {
    const redis = await RedisProcess.start({ password: PASSWORD });
    try {
      const ok = await runVideo(input, path.join(dir, 'auth'), { REDIS_URL: redis.url });
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect((await readOutputs(path.join(dir, 'auth'))).lines.map((l) => l.index)).toEqual(indices(FRAMES));
      const wrongUrl = redis.url.replace(encodeURIComponent(PASSWORD), 'not-the-password');
      const [wrong, worker] = await Promise.all([
        runVideo(input, path.join(dir, 'auth-wrong'), { REDIS_URL: wrongUrl }),
        runCli(['worker'], { REDIS_URL: wrongUrl, STREAMSEG_MODEL: TEST_MODEL }),
      ]);
      for (const result of [wrong, worker]) {
        expect(result.code).toBe(1);
        expect(result.stderr.trim()).toMatch(/^streamseg: E_REDIS_AUTH: Redis at redis:\/\/\*\*\*@127\.0\.0\.1:\d+ refused the credentials \(WRONGPASS/);
        expect(result.stderr + result.stdout).not.toContain('not-the-password');
      }
    } finally {
      await redis.stop();
    }
  });

  it('rediss://: TLS to Redis with the CA trusted through NODE_EXTRA_CA_CERTS; an untrusted certificate fails with one line', async () => {
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    const redis = await RedisProcess.start({ tls: { cert, key, ca: cert } });
    try {
      expect(redis.url).toMatch(/^rediss:\/\//);
      const ok = await runVideo(input, path.join(dir, 'tls'), { REDIS_URL: redis.url, NODE_EXTRA_CA_CERTS: cert });
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect((await readOutputs(path.join(dir, 'tls'))).video.frames).toBe(FRAMES);
      const untrusted = await runVideo(input, path.join(dir, 'tls-untrusted'), { REDIS_URL: redis.url, NODE_EXTRA_CA_CERTS: '' });
      expect(untrusted.code).toBe(1);
      expect(untrusted.stderr.trim()).toMatch(
        /^streamseg: E_REDIS_TLS: TLS to Redis at rediss:\/\/127\.0\.0\.1:\d+ failed \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/,
      );
    } finally {
      await redis.stop();
    }
  });

  it('URL inputs: http works; a remote playlist pointing at a local file is refused by the protocol whitelist', async () => {
    // A local MPEG-TS the producer must never read on behalf of a remote playlist.
    const secret = path.join(dir, 'secret.ts');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', input, '-c', 'copy', '-f', 'mpegts', secret]);
    // Index first, so ffmpeg reads the clip front to back (this little server ignores Range).
    const served = path.join(dir, 'served.mp4');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', input, '-c', 'copy', '-movflags', '+faststart', served]);
    const playlist = `#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile://${secret}\n#EXT-X-ENDLIST\n`;
    const server = http.createServer((req, res) => {
      if (req.url === '/clip.mp4') {
        res.writeHead(200, { 'content-type': 'video/mp4' });
        createReadStream(served).pipe(res);
      } else if (req.url === '/playlist') {
        // No .m3u8 in the path: a progressive URL input (.m3u8 URLs are read as live sources,
        // whose whitelists leave out `file` too); ffmpeg knows it is HLS from the content type.
        res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' }).end(playlist);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const [ok, lfi] = await Promise.all([runVideo(`${base}/clip.mp4`, path.join(dir, 'http'), {}), runVideo(`${base}/playlist`, path.join(dir, 'lfi'), {})]);
      expect(ok.code).toBe(0);
      expect((await readOutputs(path.join(dir, 'http'))).lines.map((l) => l.index)).toEqual(indices(FRAMES));
      expect(lfi.code).toBe(1);
      expect(lfi.stderr.trim()).toMatch(
        /^streamseg: E_INPUT_NOT_VIDEO: http:\/\/127\.0\.0\.1:\d+\/playlist: not a video ffprobe can read \(Protocol 'file' not on whitelist 'http,https,tcp,tls,rtp,rtsp,udp,crypto'!/,
      );
      expect(await readdir(path.join(dir, 'lfi')).catch(() => [])).not.toContain('annotated.mp4');
    } finally {
      server.close();
    }
  });

  it('no shell anywhere: every child process in src is spawned with an argument array', async () => {
    const offenders: string[] = [];
    const walk = async (folder: string): Promise<void> => {
      for (const entry of await readdir(folder, { withFileTypes: true })) {
        const full = path.join(folder, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (/\.(ts|mjs|js)$/.test(entry.name)) {
          const text = await readFile(full, 'utf8');
          for (const pattern of [
            /\bexecSync\s*\(/,
            /\bexec\s*\(\s*[`'"]/,
            /shell\s*:\s*true/,
            /child_process['"]\)\.exec\b/,
            /\bspawn\s*\(\s*['"](sh|bash)['"]/,
          ]) {
            if (pattern.test(text)) offenders.push(`${path.relative(REPO_ROOT, full)}: ${pattern}`);
          }
        }
      }
    };
    await walk(path.join(REPO_ROOT, 'src'));
    expect(offenders).toEqual([]);
    // The spawn paths for inputs name their protocols per input kind: the producer's probe and
    // decode (whose arguments raw-video-decode.ts builds), and the sink's decode of a file (`file` only).
    const repository = await readFile(path.join(REPO_ROOT, 'src/producers/ffmpeg.repository.ts'), 'utf8');
    expect(repository.match(/'-protocol_whitelist', egress\.protocols/g)).toHaveLength(1);
    expect(repository.match(/rawDecodeArgs\(\{[^}]*protocols: egress\.protocols/g)).toHaveLength(1);
    const decodeArgs = await readFile(path.join(REPO_ROOT, 'src/shared/media/raw-video-decode.ts'), 'utf8');
    expect(decodeArgs).toMatch(/'-protocol_whitelist', options\.protocols,\s*'-i', options\.locator/);
    const sinkDecoder = await readFile(path.join(REPO_ROOT, 'src/workers/sink/source-decoder.repository.ts'), 'utf8');
    expect(sinkDecoder).toMatch(/locator: `file:\$\{file\}`, protocols: 'file'/);
    await writeFile(path.join(dir, 'checked'), 'ok');
  });
});
