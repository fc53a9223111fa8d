/**
 * Issue 12: repetition separators made reading a field quadratic (PID-3 with `~` x 16,000: 7 s; x 32,000:
 * 40 s, the engine frozen meanwhile): repetition r was found by scanning the field from its start. Reading
 * every repetition, as the INS check and the PAM reader do, must cost a few scans per repetition, whatever
 * their number. Counted, not timed: the scans are String#indexOf calls (the speed is in `npm run bench`).
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { cxList, readTraits, repetitions } from '../../src/identity/pid.js';

const N = 2000;
const adt = (pid: string) =>
  Hl7Message.parse(Buffer.from(`MSH|^~\\&|GAM|HOP|PFI|HOP|20261206101500||ADT^A28^ADT_A05|C1|P|2.5\r${pid}\r`));

/** String#indexOf calls made by fn (the scans over the message text). */
function scans<T>(fn: () => T): { value: T; scans: number } {
  const spy = vi.spyOn(String.prototype, 'indexOf');
  try {
    const value = fn();
    return { value, scans: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('a field of n repetitions is read with O(n) scans, not O(n²)', () => {
  test(`PID-3 with ${N} identifiers: each read, a few scans apiece`, () => {
    const ids = Array.from({ length: N }, (_, i) => `${i}^^^HOP&1.2.250.1.999&ISO^PI`).join('~');
    const msg = adt(`PID|||${ids}||DOE^JOHN^^^^^L`);
    const pid = msg.segment('PID')!;
    const { value: list, scans: n } = scans(() => cxList(msg, pid, 'PID', 3));
    expect(repetitions(msg, pid, 3)).toBe(N);
    expect(list).toHaveLength(N);
    expect(list[N - 1]).toEqual({ id: String(N - 1), authority: '1.2.250.1.999', type: 'PI' });
    expect(n).toBeLessThan(40 * N); // scanning from the start each time: about 4 x N² / 2 = 8,000,000
  });

  test(`PID-5 and PID-11 behind ${N} empty repetitions: the traits read, a few scans per repetition`, () => {
    const names = `${'~'.repeat(N)}DOE^JOHN^^^^^L`;
    const places = `${'~'.repeat(N)}^^^^^^BDL^^75056`;
    const msg = adt(`PID|||1^^^HOP&1.2.250.1.999&ISO^PI||${names}||||||${places}`);
    const { value: traits, scans: n } = scans(() => readTraits(msg, msg.segment('PID')!));
    expect(traits).toMatchObject({ birthName: 'DOE', firstGivenName: 'JOHN', birthPlaceCode: '75056' });
    expect(n).toBeLessThan(40 * N);
  });

  test('a value set after reading reads back (the split repetitions follow the change)', () => {
    const msg = adt('PID|||A~B~C');
    expect(msg.get('PID-3[3]')).toBe('C');
    msg.set('PID-3[2]', 'X');
    expect([msg.get('PID-3[1]'), msg.get('PID-3[2]'), msg.get('PID-3[3]')]).toEqual(['A', 'X', 'C']);
    expect(msg.toString()).toContain('PID|||A~X~C');
  });
});
