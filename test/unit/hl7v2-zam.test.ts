import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { readMsh } from '../../src/hl7v2/header.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { buildZam } from '../../src/hl7v2/zam.js';
import { packageRoot } from '../../src/util/paths.js';

const DIR = join(
  packageRoot(),
  '..',
  'shared',
  'reference',
  'ansforge',
  'hl7v2-exemples',
  'Volets',
  'TRANS_DOC_CDA_HL7V2',
  'V2.1',
  'ORU',
  'Transmission initiale ORU',
);
const lines = (f: string) => readFileSync(join(DIR, f), 'utf8').trim().split(/\r?\n/);
const original = readMsh(Hl7Message.parse(lines('message_ORU_CR_Bio_INIT_N1_N3.hl7')[0]! + '\r'));
/** MSH-7, MSH-10 and EVN-2 are the moment's: left out of the comparison. */
const stable = (segs: string[]) =>
  segs.map((s) =>
    s.startsWith('MSH|')
      ? s
          .split('|')
          .map((f, i) => (i === 6 || i === 9 ? '' : f))
          .join('|')
      : s.startsWith('EVN|')
        ? 'EVN'
        : s,
  );

test('ZAM^Z01 negative, as the ANS example of a closed DMP', () => {
  const zam = buildZam({
    kind: 'Z01',
    original,
    controlId: '017',
    ok: false,
    error: { code: 'DMPClosed', label: 'DMP fermé', system: 'DMPERRORCODE' },
  });
  expect(stable(zam.trim().split('\r'))).toEqual(stable(lines('Message metier reception DMP')));
});

test('ZAM^Z02 and ZAM^Z03 positive with the recipient / reader, as the ANS examples', () => {
  const party = { id: '801234567897', address: 'adam.hoda@test-ci-sis.mssante.fr' };
  expect(stable(buildZam({ kind: 'Z02', original, controlId: '018', ok: true, party }).trim().split('\r'))).toEqual(
    stable(lines('Message metier reception MSS')),
  );
  expect(stable(buildZam({ kind: 'Z03', original, controlId: '019', ok: true, party }).trim().split('\r'))).toEqual(
    stable(lines('Message metier lecture MSS')),
  );
});

test('a free-text explanation goes to ERR-8, escaped', () => {
  const zam = Hl7Message.parse(
    buildZam({
      kind: 'Z01',
      original,
      controlId: 'X',
      ok: false,
      error: {
        hl7Code: 102,
        hl7Label: 'Data type error',
        code: 'OBX-5-cda',
        label: 'Not a CDA',
        system: 'PFIERRORCODE',
        text: 'OBX 1: a|b^c',
      },
    }),
  );
  expect(zam.get('ERR-3.1')).toBe('102');
  expect(zam.get('ERR-5.1')).toBe('OBX-5-cda');
  expect(zam.get('ERR-8')).toBe('OBX 1: a|b^c');
  expect(zam.get('OBX-4')).toBe(original.controlId);
  expect(zam.get('OBX-5.1')).toBe('N');
});
