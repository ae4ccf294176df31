import { describe, expect, it } from 'vitest';
import { decodeWarnings } from '../../src/producers/producer.service.js';

describe('decodeWarnings (damaged but decodable videos)', () => {
  it('says nothing for a clean decode of the announced length', () => {
    expect(decodeWarnings(undefined, 60, 60)).toEqual([]);
    expect(decodeWarnings(undefined, 58, 60)).toEqual([]);
  });

  it('reports decoder errors with the first line, and a decode much shorter than the header', () => {
    expect(decodeWarnings({ errorLines: 114, firstLine: '[h264 @ 0x1] error while decoding MB 5 1' }, 59, 60)).toEqual([
      'the decoder reported 114 error line(s) (first: "[h264 @ 0x1] error while decoding MB 5 1"); damaged frames were concealed by ffmpeg, and missing ones are absent',
    ]);
    expect(decodeWarnings(undefined, 26, 60)).toEqual(['only 26 of the 60 frames the header announced could be decoded (truncated or damaged file)']);
  });
});
