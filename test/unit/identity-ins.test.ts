import { expect, test } from 'vitest';
import { checkIns } from '../../src/identity/ins.js';

const NIR = '1.2.250.1.213.1.4.8';
const TEST = '1.2.250.1.213.1.4.10';

/** A matricule with its key computed the way the referential does (independent of the code under test). */
function withKey(body13: string): string {
  const n = BigInt(body13.replace('2A', '19').replace('2B', '18'));
  return body13 + String(97n - (n % 97n)).padStart(2, '0');
}

test('the INS of the ANS examples are valid', () => {
  expect(checkIns('279035121518989', TEST)).toEqual({ ok: true, kind: 'NIR-TEST' });
  expect(checkIns('277076322082910', NIR)).toEqual({ ok: true, kind: 'NIR' });
});

test('a wrong key is refused, naming the expected one', () => {
  const r = checkIns('279035121518988', TEST);
  expect(r.ok).toBe(false);
  expect(!r.ok && r.reason).toMatch(/key 88 is wrong \(expected 89\)/);
});

test('Corsica: 2A counts as 19 and 2B as 18', () => {
  for (const body of ['185022A123456', '293012B001234']) {
    const m = withKey(body);
    expect(checkIns(m, NIR)).toEqual({ ok: true, kind: 'NIR' });
    // The same digits read literally (without the substitution) give another key.
    expect(checkIns(body + String(97 - (Number(body.replace(/2[AB]/, '20')) % 97)).padStart(2, '0'), NIR).ok).toBe(
      false,
    );
  }
});

test('pseudo-months are not refused', () => {
  expect(checkIns(withKey('1854299123456'), NIR).ok).toBe(true); // month 42
});

test('unknown OID, wrong length, letters: refused', () => {
  expect(checkIns('279035121518989', '1.2.250.1.213.1.4.99')).toMatchObject({
    ok: false,
    reason: expect.stringMatching(/not an INS OID/),
  });
  expect(checkIns('27903512151898', TEST)).toMatchObject({ ok: false, reason: expect.stringMatching(/15 characters/) });
  expect(checkIns('2790351215189AB', TEST).ok).toBe(false);
});

test('NIA: format only (no NIR key)', () => {
  expect(checkIns('279035121518900', '1.2.250.1.213.1.4.9')).toEqual({ ok: true, kind: 'NIA' });
});
