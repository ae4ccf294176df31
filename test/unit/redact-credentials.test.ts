import { describe, expect, it } from 'vitest';
import { redactDeep, redactText, redactUrl } from '../../src/shared/redact-credentials.js';

describe('credential redaction (issue 18)', () => {
  it('replaces user and password of any scheme, wherever the URL stands', () => {
    expect(redactUrl('rtsp://user:pa%40ss@10.0.0.7:554/stream')).toBe('rtsp://***@10.0.0.7:554/stream');
    expect(redactUrl('rtsp://admin@cam/x')).toBe('rtsp://***@cam/x');
    expect(redactText('{"msg":"open rtsp://u:p@cam/a failed","redis":"redis://:secret@127.0.0.1:6379"}')).toBe(
      '{"msg":"open rtsp://***@cam/a failed","redis":"redis://***@127.0.0.1:6379"}',
    );
    expect(redactText("[in#0] Error opening input 'rtsp://u:p@cam/a': Connection refused")).toBe(
      "[in#0] Error opening input 'rtsp://***@cam/a': Connection refused",
    );
  });

  it('leaves URLs without credentials alone, an @ in a path or query included', () => {
    for (const text of ['http://example.com/a@b.mp4', 'http://example.com?mail=a@b', 'udp://127.0.0.1:9', 'rtsp://cam/x#frag@y', 'mail me at a@b.c']) {
      expect(redactText(text)).toBe(text);
    }
  });

  it('redacts every string of job data, keys and shape kept', () => {
    const data = {
      videoId: 'v1',
      input: { kind: 'url', url: 'rtsp://u:p@cam/s' },
      options: { live: { restreamUrl: 'rtsp://a:b@out/x' } },
      n: 3,
      list: ['udp://x:y@h:1'],
    };
    expect(redactDeep(data)).toEqual({
      videoId: 'v1',
      input: { kind: 'url', url: 'rtsp://***@cam/s' },
      options: { live: { restreamUrl: 'rtsp://***@out/x' } },
      n: 3,
      list: ['udp://***@h:1'],
    });
  });
});
