// A frames(id) consumer run as its own process by frames-consumer.test.ts, so it can be SIGKILLed.
// Appends "<N|R> <frame index>" per record (R: redelivered), acknowledges it, and after STOP_AT
// records prints STOPPED and hangs (records it has received but not handled stay pending).
import { appendFileSync } from 'node:fs';
import { StreamsegClient } from '../../src/index.js';

const [redisUrl, videoId, outFile] = process.argv.slice(2);
const stopAt = process.env.STOP_AT ? Number(process.env.STOP_AT) : Number.POSITIVE_INFINITY;
const client = await StreamsegClient.connect({ redisUrl });
let handled = 0;
for await (const frame of client.frames(videoId!, { group: 'test-app', consumer: 'consumer-1', count: 16, autoAck: false })) {
  appendFileSync(outFile!, `${frame.redelivered ? 'R' : 'N'} ${frame.record.index}\n`);
  await frame.ack();
  handled++;
  if (handled === stopAt) {
    process.stdout.write('STOPPED\n');
    await new Promise(() => undefined);
  }
}
process.stdout.write('END\n');
await client.close();
process.exit(0);
