import { describe, expect, it, vi } from 'vitest';
import { CR, FS, MllpDecoder, VT, frame, type MllpEvent } from '../../src/mllp/framing.js';
import { extractAck, extractMessageControlId } from '../../src/mllp/correlate.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const msg = (id: string): Buffer => b(`MSH|^~\\&|APP|FAC|PFI|PFI|20260101120000||ADT^A01|${id}|P|2.5\rPID|1||123\r`);
const payloads = (evs: MllpEvent[]): string[] =>
  evs.filter((e) => e.kind === 'message').map((e) => (e as { payload: Buffer }).payload.toString('latin1'));

describe('frame()', () => {
  it('wraps with VT and FS CR', () => {
    expect([...frame(b('AB'))]).toEqual([VT, 0x41, 0x42, FS, CR]);
  });
});

describe('MllpDecoder', () => {
  it('decodes one frame in one chunk', () => {
    const d = new MllpDecoder();
    expect(d.push(frame(msg('1')))).toEqual([{ kind: 'message', payload: msg('1') }]);
    expect(d.pendingBytes).toBe(0);
  });

  it('handles partial frames', () => {
    const d = new MllpDecoder();
    const f = frame(msg('1'));
    expect(d.push(f.subarray(0, 10))).toEqual([]);
    expect(d.pendingBytes).toBe(9);
    expect(d.push(f.subarray(10, 30))).toEqual([]);
    expect(d.pendingBytes).toBe(29);
    expect(payloads(d.push(f.subarray(30)))).toEqual([msg('1').toString('latin1')]);
    expect(d.pendingBytes).toBe(0);
  });

  it('emits both messages when two frames arrive in one chunk (and a third partial)', () => {
    const d = new MllpDecoder();
    const third = frame(msg('3'));
    const chunk = Buffer.concat([frame(msg('1')), frame(msg('2')), third.subarray(0, 5)]);
    const evs = d.push(chunk);
    expect(payloads(evs)).toEqual([msg('1'), msg('2')].map((m) => m.toString('latin1')));
    expect(evs.every((e) => e.kind === 'message')).toBe(true);
    expect(payloads(d.push(third.subarray(5)))).toEqual([msg('3').toString('latin1')]);
  });

  it('decodes a stream fed one byte at a time', () => {
    const d = new MllpDecoder();
    const stream = Buffer.concat([frame(msg('1')), b('\n'), frame(msg('2'))]);
    const evs: MllpEvent[] = [];
    for (let i = 0; i < stream.length; i++) evs.push(...d.push(stream.subarray(i, i + 1)));
    expect(evs.map((e) => e.kind)).toEqual(['message', 'junk', 'message']);
    expect(payloads(evs)).toEqual([msg('1'), msg('2')].map((m) => m.toString('latin1')));
    expect(evs[1]).toEqual({ kind: 'junk', bytes: 1, sample: b('\n') });
  });

  it('handles FS and CR split across chunks', () => {
    const d = new MllpDecoder();
    const f = frame(msg('1'));
    const evs1 = d.push(f.subarray(0, f.length - 1)); // ends with FS
    expect(payloads(evs1)).toEqual([msg('1').toString('latin1')]);
    // the CR that completes the trailer is not junk
    expect(d.push(f.subarray(f.length - 1))).toEqual([]);
    expect(payloads(d.push(frame(msg('2'))))).toEqual([msg('2').toString('latin1')]);
    expect(d.end()).toEqual([]);
  });

  it('accepts FS without CR (lenient): the frame ends, the next byte is handled normally', () => {
    const d = new MllpDecoder();
    const noCr = (m: Buffer): Buffer => Buffer.concat([Buffer.from([VT]), m, Buffer.from([FS])]);
    const evs = d.push(Buffer.concat([noCr(msg('1')), noCr(msg('2')), b('x'), frame(msg('3'))]));
    expect(evs.map((e) => e.kind)).toEqual(['message', 'message', 'junk', 'message']);
    expect(payloads(evs)).toEqual(['1', '2', '3'].map((i) => msg(i).toString('latin1')));
  });

  it('reports a run of junk once, when the run ends', () => {
    const d = new MllpDecoder();
    const junk = Buffer.alloc(1000, 0x41);
    expect(d.push(junk.subarray(0, 400))).toEqual([]);
    expect(d.push(junk.subarray(400))).toEqual([]);
    const evs = d.push(frame(msg('1')));
    expect(evs.map((e) => e.kind)).toEqual(['junk', 'message']);
    const j = evs[0] as Extract<MllpEvent, { kind: 'junk' }>;
    expect(j.bytes).toBe(1000);
    expect(j.sample.length).toBe(256);
    expect(d.pendingBytes).toBe(0);
    // junk at end of stream is reported by end()
    d.push(b('trailing'));
    expect(d.end()).toEqual([{ kind: 'junk', bytes: 8, sample: b('trailing') }]);
  });

  it('abandons a truncated frame when a VT arrives, then decodes the next one', () => {
    const d = new MllpDecoder();
    const partial = Buffer.concat([Buffer.from([VT]), b('MSH|^~\\&|half')]);
    expect(d.push(partial)).toEqual([]);
    const evs = d.push(frame(msg('2')));
    expect(evs).toEqual([
      { kind: 'truncated', payload: b('MSH|^~\\&|half') },
      { kind: 'message', payload: msg('2') },
    ]);
  });

  it('end() reports an unfinished frame as truncated', () => {
    const d = new MllpDecoder();
    d.push(Buffer.concat([Buffer.from([VT]), b('abc')]));
    expect(d.end()).toEqual([{ kind: 'truncated', payload: b('abc') }]);
    expect(d.pendingBytes).toBe(0);
  });

  it('reports an oversize frame once, does not keep it, and resumes after its end', () => {
    const max = 100 * 1024;
    const d = new MllpDecoder({ maxMessageBytes: max });
    const big = Buffer.alloc(1024 * 1024, 0x41);
    big.write('MSH|^~\\&|BIG', 0, 'latin1');
    const f = frame(big);
    const evs: MllpEvent[] = [];
    for (let i = 0; i < f.length; i += 8192) {
      evs.push(...d.push(f.subarray(i, i + 8192)));
      expect(d.pendingBytes).toBeLessThanOrEqual(max);
    }
    expect(evs.length).toBe(1);
    const o = evs[0] as Extract<MllpEvent, { kind: 'oversize' }>;
    expect(o.kind).toBe('oversize');
    expect(o.bytes).toBeGreaterThan(max);
    expect(o.head.length).toBe(64 * 1024);
    expect(o.head.subarray(0, 12).toString('latin1')).toBe('MSH|^~\\&|BIG');
    expect(d.pendingBytes).toBe(0);
    expect(payloads(d.push(frame(msg('after'))))).toEqual([msg('after').toString('latin1')]);
  });

  it('oversize head is capped by a small max', () => {
    const d = new MllpDecoder({ maxMessageBytes: 10 });
    const evs = d.push(frame(b('0123456789ABCDEF')));
    expect(evs).toEqual([{ kind: 'oversize', head: b('0123456789'), bytes: 16 }]);
    expect(d.push(frame(b('ok')))).toEqual([{ kind: 'message', payload: b('ok') }]);
  });

  it('a VT inside an oversize frame starts a new frame', () => {
    const d = new MllpDecoder({ maxMessageBytes: 4 });
    const evs = d.push(Buffer.concat([Buffer.from([VT]), b('toolong'), frame(b('ok'))]));
    expect(evs.map((e) => e.kind)).toEqual(['oversize', 'message']);
  });

  // Linear: the 320 chunks are joined once (copies counted), not once per chunk. How fast: `npm run bench`
  // (scenario parsers); the 60 s limit only catches a decoder gone quadratic in its scans.
  it('decodes a 20 MB frame fed in 64 KiB chunks in linear time, one copy', () => {
    const size = 20 * 1024 * 1024;
    const payload = Buffer.alloc(size, 0x61);
    const f = frame(payload);
    const d = new MllpDecoder();
    const concat = vi.spyOn(Buffer, 'concat');
    let evs: MllpEvent[] = [];
    let expected = 0;
    let copies: number[];
    try {
      for (let i = 0; i < f.length; i += 65536) {
        const chunk = f.subarray(i, i + 65536);
        evs = d.push(chunk);
        if (i + 65536 < f.length - 2) {
          expected += chunk.length - (i === 0 ? 1 : 0);
          expect(d.pendingBytes).toBe(expected);
        }
      }
    } finally {
      copies = concat.mock.calls.map(([list, length]) => length ?? list.reduce((n, b) => n + b.length, 0));
      concat.mockRestore();
    }
    expect(copies).toEqual([size]); // quadratic concatenation would copy ~160 times the frame
    expect(evs.length).toBe(1);
    const m = evs[0] as Extract<MllpEvent, { kind: 'message' }>;
    expect(m.payload.length).toBe(size);
    expect(m.payload.equals(payload)).toBe(true);
    expect(d.pendingBytes).toBe(0);
  }, 60_000);
});

describe('correlate', () => {
  it('extracts MSH-10 with any field separator', () => {
    expect(extractMessageControlId(msg('ABC123'))).toBe('ABC123');
    expect(extractMessageControlId(b('MSH#^~\\&#A#B#C#D#20260101##ADT^A01#X9#P#2.5'))).toBe('X9');
    expect(extractMessageControlId(b('PID|1'))).toBeUndefined();
    expect(extractMessageControlId(b('MSH|^~\\&|A|B|C|D|2026||ADT^A01||P'))).toBeUndefined();
  });

  it('extracts MSA-1 and MSA-2', () => {
    const ack = b('MSH|^~\\&|PFI|PFI|APP|FAC|20260101||ACK^A01^ACK|ACK1|P|2.5\rMSA|AE|ABC123\rERR|||207\r');
    expect(extractAck(ack)).toEqual({ code: 'AE', controlId: 'ABC123' });
    expect(extractAck(b('MSH|^~\\&|A\r\nMSA|AA|X\r\n'))).toEqual({ code: 'AA', controlId: 'X' });
    expect(extractAck(b('MSH|^~\\&|A\rPID|1'))).toBeUndefined();
  });
});
