import cliProgress from 'cli-progress';
import type { VideoState } from '../shared/video-state.js';

/** Three bars (decode, segment, sink) on stderr, fed from the video's shared state. */
export class ProgressView {
  private readonly bars: cliProgress.MultiBar;
  private readonly decode: cliProgress.SingleBar;
  private readonly segment: cliProgress.SingleBar;
  private readonly sink: cliProgress.SingleBar;

  constructor(videoId: string) {
    this.bars = new cliProgress.MultiBar(
      {
        format: `${videoId} {stage} |{bar}| {value}/{total} frames {extra}`,
        hideCursor: true,
        clearOnComplete: false,
        noTTYOutput: true,
        notTTYSchedule: 5000,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.decode = this.bars.create(1, 0, { stage: 'decode ', extra: '' });
    this.segment = this.bars.create(1, 0, { stage: 'segment', extra: '' });
    this.sink = this.bars.create(1, 0, { stage: 'sink   ', extra: '' });
  }

  update(state: VideoState): void {
    const total = Math.max(1, state.totalFrames ?? state.expectedFrames ?? state.decodedFrames);
    for (const bar of [this.decode, this.segment, this.sink]) bar.setTotal(total);
    this.decode.update(state.decodedFrames, { extra: state.status === 'decoding' ? '' : state.status });
    this.segment.update(Math.min(state.segmentedFrames, total));
    this.sink.update(state.sinkFrames);
  }

  stop(): void {
    this.bars.stop();
  }
}
