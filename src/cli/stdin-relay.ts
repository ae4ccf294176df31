import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * Serves a byte stream (stdin of `streamseg run -`) over loopback HTTP, so the producer reads
 * it as any other live source: ffmpeg opens `http://127.0.0.1:<port>/<random>` and gets the
 * bytes as they come. One reader at a time; a reader that reconnects gets the bytes from where
 * the last one stopped; after the end, requests get 410 Gone. The path is random, and the
 * server listens on 127.0.0.1 only.
 */
export class StdinRelay {
  private ended = false;
  private busy = false;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(input: Readable): Promise<StdinRelay> {
    const secret = `/stdin-${randomBytes(8).toString('hex')}`;
    let relay: StdinRelay | undefined;
    const server = createServer((req, res) => {
      if (!relay || req.url !== secret || req.method !== 'GET') {
        res.writeHead(404).end();
        return;
      }
      if (relay.ended) {
        res.writeHead(410).end();
        return;
      }
      if (relay.busy) {
        res.writeHead(409).end();
        return;
      }
      relay.busy = true;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const onEnd = () => {
        relay!.ended = true;
        res.end();
      };
      input.once('end', onEnd);
      input.pipe(res, { end: false });
      res.on('close', () => {
        input.unpipe(res);
        input.off('end', onEnd);
        relay!.busy = false;
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    relay = new StdinRelay(server, `http://127.0.0.1:${port}${secret}`);
    return relay;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
