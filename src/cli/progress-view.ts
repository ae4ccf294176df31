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
    // A live source has no length: the bars measure against what has been captured so far.
    const known = state.live ? undefined : (state.totalFrames ?? state.expectedFrames);
    const total = Math.max(1, known || state.decodedFrames);
    for (const bar of [this.decode, this.segment, this.sink]) bar.setTotal(total);
    const live = state.live ? `live, ${state.droppedFrames ?? 0} dropped` : '';
    const status = state.status === 'decoding' ? '' : state.status;
    this.decode.update(state.decodedFrames, { extra: [live, status].filter(Boolean).join(', ') });
    this.segment.update(Math.min(state.segmentedFrames, total));
    this.sink.update(state.sinkFrames);
  }

  stop(): void {
    this.bars.stop();
  }
}
