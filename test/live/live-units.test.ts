import { describe, expect, it } from 'vitest';
import { LiveDropPolicy } from '../../src/producers/live-drop-policy.js';
import { liveDecodeArgs } from '../../src/producers/live-ffmpeg.repository.js';
import { LIVE_PROTOCOL_WHITELIST, isLiveJob, isLiveVideo, liveInputSpec, liveSourceKind } from '../../src/producers/live-source.js';
import { loadConfig } from '../../src/shared/config.js';
import { ConfigError } from '../../src/shared/errors/index.js';
import { liveOptionsSchema } from '../../src/shared/job-schemas.js';
import { liveOutputArgs } from '../../src/workers/sink/live-output.repository.js';

describe('live frame policy', () => {
  it('enqueues while under the limit, whatever the policy', () => {
    for (const policy of ['drop-oldest', 'keep-latest', 'every-nth'] as const) {
      const p = new LiveDropPolicy({ policy, maxInFlight: 3 });
      expect([0, 1, 2].map((n) => p.decide(n))).toEqual(['enqueue', 'enqueue', 'enqueue']);
    }
  });

  it('drop-oldest evicts, keep-latest holds, at the limit', () => {
    expect(new LiveDropPolicy({ policy: 'drop-oldest', maxInFlight: 2 }).decide(2)).toBe('evict-oldest');
    const keep = new LiveDropPolicy({ policy: 'keep-latest', maxInFlight: 2 });
    expect(keep.decide(5)).toBe('hold');
    expect(keep.mayRelease(2)).toBe(false);
    expect(keep.mayRelease(1)).toBe(true);
  });

  it('every-nth admits one frame in N while behind, none past twice the limit, and restarts counting once caught up', () => {
    const p = new LiveDropPolicy({ policy: 'every-nth', maxInFlight: 4, every: 3 });
    expect([4, 4, 4, 5, 5, 5].map((n) => p.decide(n))).toEqual(['drop', 'drop', 'enqueue', 'drop', 'drop', 'enqueue']);
    expect([8, 8, 8].map((n) => p.decide(n))).toEqual(['drop', 'drop', 'drop']);
    expect(p.decide(1)).toBe('enqueue');
    expect([4, 4, 4].map((n) => p.decide(n))).toEqual(['drop', 'drop', 'enqueue']);
  });

  it('refuses impossible settings at construction', () => {
    expect(() => new LiveDropPolicy({ policy: 'drop-oldest', maxInFlight: 0 })).toThrow(/maxInFlight/);
    expect(() => new LiveDropPolicy({ policy: 'every-nth', maxInFlight: 2, every: 1 })).toThrow(/every/);
  });

  it('config: STREAMSEG_LIVE_DROP_POLICY and friends are read and validated', () => {
    const config = loadConfig({}, { STREAMSEG_LIVE_DROP_POLICY: 'keep-latest', STREAMSEG_LIVE_MAX_IN_FLIGHT: '2', STREAMSEG_LIVE_DROP_EVERY: '5' });
    expect([config.liveDropPolicy, config.liveMaxInFlight, config.liveDropEvery]).toEqual(['keep-latest', 2, 5]);
    expect(loadConfig({}, {}).liveDropPolicy).toBe('drop-oldest');
    expect(() => loadConfig({}, { STREAMSEG_LIVE_DROP_POLICY: 'drop-newest' })).toThrow(ConfigError);
  });
});

describe('live sources', () => {
  it('rtsp/udp URLs and HLS playlists are live; progressive http only when asked', () => {
    expect(isLiveVideo({ kind: 'url', url: 'rtsp://cam.local/stream' }, {})).toBe(true);
    expect(isLiveVideo({ kind: 'url', url: 'udp://127.0.0.1:1234' }, {})).toBe(true);
    expect(isLiveVideo({ kind: 'url', url: 'https://cdn.example/live/index.m3u8?token=1' }, {})).toBe(true);
    expect(isLiveVideo({ kind: 'url', url: 'https://cdn.example/clip.mp4' }, {})).toBe(false);
    expect(isLiveVideo({ kind: 'url', url: 'http://cam.local/stream.ts' }, { live: {} })).toBe(true);
    expect(isLiveVideo({ kind: 'file', path: '/x.mp4' }, {})).toBe(false);
    expect(isLiveJob({ videoId: 'v1', input: { kind: 'url', url: 'rtsp://a/b' }, options: { outDir: '/o' }, submittedAt: 1 })).toBe(true);
    expect(isLiveJob({ nonsense: true })).toBe(false);
    expect(liveSourceKind('HTTP://x/a.M3U8')).toBe('hls');
  });

  it('each scheme gets its own protocol whitelist, never file', () => {
    for (const whitelist of Object.values(LIVE_PROTOCOL_WHITELIST)) expect(whitelist.split(',')).not.toContain('file');
    const rtsp = liveInputSpec('rtsp://cam/s', { rtspTransport: 'udp' });
    expect(rtsp.inputArgs).toEqual(['-protocol_whitelist', 'rtsp,rtp,udp,tcp', '-analyzeduration', '1000000', '-rtsp_transport', 'udp', '-timeout', '5000000']);
    expect(liveInputSpec('rtsp://cam/s').inputArgs).toContain('tcp');
    expect(liveInputSpec('rtsp://0.0.0.0:8554/s', { listen: true }).inputArgs).toEqual([
      '-protocol_whitelist',
      'rtsp,rtp,udp,tcp',
      '-analyzeduration',
      '1000000',
      '-rtsp_flags',
      'listen',
    ]);
    const udp = liveInputSpec('udp://127.0.0.1:5000');
    expect(udp.inputArgs).toEqual(['-protocol_whitelist', 'udp,rtp', '-analyzeduration', '1000000']);
    expect(udp.locator).toBe('udp://127.0.0.1:5000?timeout=5000000&fifo_size=1000000&overrun_nonfatal=1');
    expect(liveInputSpec('udp://127.0.0.1:5000?timeout=1&fifo_size=2').locator).toBe('udp://127.0.0.1:5000?timeout=1&fifo_size=2&overrun_nonfatal=1');
    expect(liveInputSpec('https://x/live.m3u8').inputArgs).toEqual([
      '-protocol_whitelist',
      'http,https,tcp,tls,crypto',
      '-analyzeduration',
      '1000000',
      '-rw_timeout',
      '5000000',
      '-live_start_index',
      '-1',
    ]);
    expect(liveInputSpec('http://127.0.0.1:1/stdin', { nativeRate: true }).inputArgs.at(-1)).toBe('-re');
  });

  it('decode arguments: an argument array, raw RGB24 to stdout, frames passed through unless a rate is asked for', () => {
    const args = liveDecodeArgs('udp://127.0.0.1:5000');
    expect(args.slice(-5)).toEqual(['-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
    expect(args).toContain('passthrough');
    expect(args[args.indexOf('-i') + 1]).toMatch(/^udp:\/\/127\.0\.0\.1:5000\?/);
    const pinned = liveDecodeArgs('rtsp://a/b', { size: { width: 320, height: 240 }, fps: 5 });
    expect(pinned[pinned.indexOf('-vf') + 1]).toBe('scale=320:240,fps=5');
    expect(pinned).not.toContain('passthrough');
  });

  it('live options: restream must be rtsp or udp, without characters the tee muxer splits on', () => {
    expect(liveOptionsSchema.safeParse({ restreamUrl: 'udp://127.0.0.1:1234?pkt_size=1316' }).success).toBe(true);
    expect(liveOptionsSchema.safeParse({ restreamUrl: 'rtsp://server:8554/out' }).success).toBe(true);
    expect(liveOptionsSchema.safeParse({ restreamUrl: 'file:///etc/passwd' }).success).toBe(false);
    expect(liveOptionsSchema.safeParse({ restreamUrl: 'udp://1.2.3.4:5|/tmp/x' }).success).toBe(false);
  });
});

describe('live outputs', () => {
  it('low-latency HLS: 1 s segments on forced keyframes, rolling playlist with deleted segments', () => {
    const args = liveOutputArgs({ dir: '/out/v/live', width: 320, height: 240, fps: 10, listSize: 4 });
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    expect([at('-f'), at('-s'), at('-framerate')]).toEqual(['rawvideo', '320x240', '10']);
    expect([at('-hls_time'), at('-hls_list_size'), at('-hls_flags')]).toEqual(['1', '4', 'delete_segments+independent_segments+append_list']);
    expect([at('-g'), at('-tune'), at('-force_key_frames')]).toEqual(['10', 'zerolatency', 'expr:gte(t,n_forced*1)']);
    expect(args.at(-1)).toBe('/out/v/live/index.m3u8');
  });

  it('with a restream: one encode, tee to HLS and the restream (ignored when it fails)', () => {
    const udp = liveOutputArgs({ dir: '/o', width: 64, height: 48, fps: 25, restreamUrl: 'udp://127.0.0.1:9000' });
    expect(udp.at(-1)).toBe(
      '[f=hls:hls_time=1:hls_list_size=6:hls_flags=delete_segments+independent_segments+append_list]/o/index.m3u8|[f=mpegts:onfail=ignore]udp://127.0.0.1:9000',
    );
    const rtsp = liveOutputArgs({ dir: '/o', width: 64, height: 48, fps: 25, restreamUrl: 'rtsp://s:8554/out' });
    expect(rtsp.at(-1)).toContain('|[f=rtsp:rtsp_transport=tcp:onfail=ignore]rtsp://s:8554/out');
    expect(() => liveOutputArgs({ dir: '/o|x', width: 64, height: 48, fps: 25, restreamUrl: 'udp://a:1' })).toThrow(/E_LIVE_OUTPUT|cannot carry/);
  });
});
