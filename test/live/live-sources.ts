import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A test source process that can be killed and started again. */
export interface TestSender {
  /** Kills the sender at once (SIGKILL: the receiver sees the source drop, no goodbye). */
  kill(): Promise<void>;
}

const TESTSRC = (size: string, fps: number) => ['-re', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${fps}`];
const H264 = (fps: number) => ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(fps), '-pix_fmt', 'yuv420p'];
/** testsrc2 encoded as low-latency H.264 at real-time rate: what every sender below sends. */
const LIVE_H264_SOURCE = (size: string, fps: number) => ['-hide_banner', '-loglevel', 'error', '-nostdin', ...TESTSRC(size, fps), ...H264(fps)];

/**
 * Publishes testsrc2 at real-time rate (-re) to an RTSP listener (ANNOUNCE/RECORD), retrying
 * while nobody listens yet (the producer opens its listener when it takes the job, and again
 * after each drop), until killed.
 */
export function startRtspPublisher(url: string, options: { transport: 'tcp' | 'udp'; size?: string; fps?: number }): TestSender {
  const fps = options.fps ?? 10;
  const args = [...LIVE_H264_SOURCE(options.size ?? '320x240', fps), '-rtsp_transport', options.transport, '-f', 'rtsp', url];
  return retrying(args);
}

/** Sends testsrc2 as MPEG-TS over UDP at real-time rate, until killed. */
export function startUdpSender(url: string, options: { size?: string; fps?: number } = {}): TestSender {
  const fps = options.fps ?? 10;
  const args = [...LIVE_H264_SOURCE(options.size ?? '320x240', fps), '-f', 'mpegts', `${url}?pkt_size=1316`];
  return retrying(args);
}

/**
 * A real RTSP server (test/live/rtsp-server.py: GStreamer's gst-rtsp-server) serving a live
 * H.264 test pattern at rtsp://127.0.0.1:PORT/cam; resolves once it listens.
 */
export async function startRtspServer(port: number): Promise<TestSender> {
  const script = fileURLToPath(new URL('./rtsp-server.py', import.meta.url));
  const child = spawn('/usr/bin/python3', [script, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`RTSP server exited with ${code}: ${stderr.trim()}`)));
  });
  return {
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

function retrying(args: string[]): TestSender {
  let child: ChildProcess | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const launch = () => {
    if (stopped) return;
    child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'ignore'] });
    child.once('exit', () => {
      if (!stopped) timer = setTimeout(launch, 300);
    });
  };
  launch();
  return {
    kill: async () => {
      stopped = true;
      clearTimeout(timer);
      const current = child;
      if (current && current.exitCode === null && current.signalCode === null) {
        const exited = new Promise((resolve) => current.once('exit', resolve));
        current.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Polls `check` every 100 ms until it returns a value (not undefined/false); the timeout only guards against hangs. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
