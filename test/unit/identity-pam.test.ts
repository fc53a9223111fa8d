import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Hl7Message } from '../../src/hl7v2/index.js';
import { dmpPermissions, PamError, readPatientUpdate, type PatientUpdate } from '../../src/identity/pam.js';
import { packageRoot } from '../../src/util/paths.js';

const HL7 = join(packageRoot(), '..', 'shared', 'reference', 'ansforge', 'hl7v2-exemples');
const CONSENT = join('Vague 2', 'Consentement_DMP_PAMFR');
const text = (path: string) => readFileSync(join(HL7, path), 'utf8').replace(/\r?\n/g, '\r');
const read = (path: string) => readPatientUpdate(Hl7Message.parse(text(path)));

function thrown(f: () => unknown): PamError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PamError);
    return e as PamError;
  }
  throw new Error('no PamError thrown');
}

/** PAT-TROIS DOMINIQUE, the test patient of all these examples (PID "ne pas modifier"). */
function expectPatTrois(u: PatientUpdate): void {
  expect(u.ids).toEqual([
    { id: '000003', authority: '000897406', type: 'PI' },
    { id: '279035121518989', authority: '1.2.250.1.213.1.4.10', type: 'INS' },
  ]);
  expect(u.ins).toEqual({ matricule: '279035121518989', oid: '1.2.250.1.213.1.4.10', valid: true });
  expect(u.traits).toEqual({
    birthName: 'PAT-TROIS',
    firstGivenName: 'DOMINIQUE',
    givenNames: ['DOMINIQUE'],
    birthDate: '19790328',
    sex: 'F',
    birthPlaceCode: '63220',
  });
  expect(u.traits.usedName).toBeUndefined();
  expect(u.reliability).toBe('VALI');
  expect(u.attributes).toEqual([]);
}

describe('Consentement_DMP_PAMFR examples (ADT^A01)', () => {
  const cases = [
    {
      file: 'ConsentementConsultation_NonOppositionAlimentation.er7',
      day: '06',
      visit: '000897406',
      feeding: 'INO',
      consultation: 'IC',
      permissions: { feedingAllowed: true, consultationAllowed: true },
    },
    {
      file: 'NonConsentementConsultation_NonOppositionAlimentation.er7',
      day: '07',
      visit: '000197406',
      feeding: 'INO',
      consultation: 'INC',
      permissions: { feedingAllowed: true, consultationAllowed: false },
    },
    {
      file: 'NonConsentementConsultation_OppositionAlimentation.er7',
      day: '09',
      visit: '000297406',
      feeding: 'IO',
      consultation: 'INC',
      permissions: { feedingAllowed: false, consultationAllowed: false },
    },
    {
      file: 'NonRecueillieConsentementConsultation_NonOppositionAlimentation.er7',
      day: '10',
      visit: '000597406',
      feeding: 'INO',
      consultation: 'NA',
      permissions: { feedingAllowed: true, consultationAllowed: false },
    },
    {
      file: 'NonRecueillieConsentementConsultation_NonRecueillieOppositionAlimentation.er7',
      day: '11',
      visit: '000997406',
      feeding: 'NA',
      consultation: 'NA',
      permissions: { feedingAllowed: true, consultationAllowed: false },
    },
  ];

  test.each(cases)('$file', (c) => {
    const u = read(join(CONSENT, c.file));
    const d = `202403${c.day}`;
    expect(u.event).toBe('A01');
    // EVN-6 (occurred, 11:00) wins over EVN-2 (recorded, 11:11:54).
    expect(u.eventTime).toBe(`${d}110000`);
    expectPatTrois(u);
    expect(u.stay).toEqual({
      visit: { id: c.visit, authority: '000897406', type: 'VN' },
      patientClass: 'I',
      admitTime: `${d}110000`,
    });
    expect(u.movement).toEqual({ id: '312', time: `${d}110000`, action: 'INSERT' });
    // The date of a "not collected" answer is empty where the example sends one.
    const dated = (value: string) => (value === 'NA' ? { value } : { value, date: `${d}111154` });
    expect(u.consent).toEqual({
      dmpStatus: 'ACTIF',
      feeding: dated(c.feeding),
      consultation: dated(c.consultation),
    });
    expect(u.previousIds).toBeUndefined();
    expect(dmpPermissions(u.consent)).toEqual(c.permissions);
  });

  test('the NA feeding answer of the last example still carries no date', () => {
    const u = read(join(CONSENT, 'NonRecueillieConsentementConsultation_NonOppositionAlimentation.er7'));
    // ZFA-9 INO is dated, ZFA-11 NA is not.
    expect(u.consent?.feeding).toEqual({ value: 'INO', date: '20240310111154' });
    expect(u.consent?.consultation).toEqual({ value: 'NA' });
  });
});

describe('SGL templates', () => {
  test('admission.er7 (A01)', () => {
    const u = read(join('SGL', 'admission.er7'));
    expect(u.event).toBe('A01');
    expect(u.eventTime).toBe('20240306111154');
    expectPatTrois(u);
    // The template's PV1 has no admit time (PV1-44).
    expect(u.stay).toEqual({ visit: { id: '000897406', authority: '000897406', type: 'VN' }, patientClass: 'I' });
    expect(u.movement).toEqual({ id: '001', time: '20240306110000', action: 'INSERT' });
    expect(u.consent).toEqual({
      dmpStatus: 'ACTIF',
      feeding: { value: 'INO', date: '20240306111154' },
      consultation: { value: 'IC', date: '20240306111154' },
    });
    expect(dmpPermissions(u.consent)).toEqual({ feedingAllowed: true, consultationAllowed: true });
  });

  test('sortie.er7 (A03): no ZFA, and the ZBE fields shifted by one', () => {
    const u = read(join('SGL', 'sortie.er7'));
    expect(u.event).toBe('A03');
    expect(u.eventTime).toBe('20240306111154');
    expectPatTrois(u);
    // No discharge time in PV1-45 either.
    expect(u.stay).toEqual({ visit: { id: '000897406', authority: '000897406', type: 'VN' }, patientClass: 'I' });
    expect(u.stay?.dischargeTime).toBeUndefined();
    // The template fills ZBE-3 (end of movement, not used in France) so INSERT lands in ZBE-5:
    // ZBE-4 is read as sent, empty.
    expect(u.movement).toEqual({ id: '002', time: '20240306110000' });
    expect(u.consent).toBeUndefined();
    expect(dmpPermissions(u.consent)).toEqual({ feedingAllowed: true, consultationAllowed: false });
  });
});

/** An example with its MSH-9 replaced and extra segments after PID. */
function variant(msh9: string, afterPid: string[], edit: (s: string) => string = (s) => s): Hl7Message {
  const segs = edit(text(join('SGL', 'admission.er7')))
    .split('\r')
    .filter(Boolean);
  const at = segs.findIndex((s) => s.startsWith('PID|'));
  segs.splice(at + 1, 0, ...afterPid);
  const msg = Hl7Message.parse(segs.join('\r') + '\r');
  msg.setRaw('MSH-9', msh9);
  return msg;
}

describe('merge and identifier change', () => {
  test('A40: MRG-1 gives the identifiers merged away', () => {
    const msg = variant('ADT^A40^ADT_A39', ['MRG|000099^^^CHU-X&000897406&N^PI~000100^^^CHU-X&000897406&N^PI']);
    const u = readPatientUpdate(msg);
    expect(u.event).toBe('A40');
    expect(u.previousIds).toEqual([
      { id: '000099', authority: '000897406', type: 'PI' },
      { id: '000100', authority: '000897406', type: 'PI' },
    ]);
    expect(u.ids[0]).toEqual({ id: '000003', authority: '000897406', type: 'PI' });
  });

  test('A47: MRG-1 gives the identifier before the change', () => {
    const u = readPatientUpdate(variant('ADT^A47^ADT_A30', ['MRG|000042^^^CHU-X&000897406&N^PI']));
    expect(u.event).toBe('A47');
    expect(u.previousIds).toEqual([{ id: '000042', authority: '000897406', type: 'PI' }]);
  });

  test('A40 without MRG: 100; with an empty MRG-1: 101', () => {
    expect(thrown(() => readPatientUpdate(variant('ADT^A40^ADT_A39', [])))).toMatchObject({
      code: 100,
      location: { segment: 'MRG' },
    });
    expect(thrown(() => readPatientUpdate(variant('ADT^A40^ADT_A39', ['MRG|'])))).toMatchObject({
      code: 101,
      location: { segment: 'MRG', field: 1 },
    });
  });
});

describe('errors and variants', () => {
  test('no PID: PamError 100', () => {
    const msg = Hl7Message.parse(
      text(join('SGL', 'admission.er7'))
        .split('\r')
        .filter((s) => !s.startsWith('PID|'))
        .join('\r'),
    );
    const e = thrown(() => readPatientUpdate(msg));
    expect(e.code).toBe(100);
    expect(e.location).toEqual({ segment: 'PID' });
  });

  test('empty PID-3: PamError 101', () => {
    const msg = Hl7Message.parse(text(join('SGL', 'admission.er7')).replace(/^(PID\|1\|\|)[^|]*/m, '$1'));
    expect(msg.getRaw('PID-3')).toBe('');
    expect(thrown(() => readPatientUpdate(msg))).toMatchObject({ code: 101, location: { segment: 'PID', field: 3 } });
  });

  test('an INS with a wrong key is read, not refused', () => {
    const msg = Hl7Message.parse(text(join('SGL', 'admission.er7')).replace('279035121518989', '279035121518988'));
    const u = readPatientUpdate(msg);
    expect(u.ins).toMatchObject({ matricule: '279035121518988', valid: false });
    expect(u.ins?.reason).toMatch(/key 88 is wrong/);
  });

  test('birth and used names, given names list, status with attributes, discharge time', () => {
    const msg = Hl7Message.parse(text(join('SGL', 'sortie.er7')));
    msg.setRaw('PID-5', 'MARTIN^JEAN^JEAN PIERRE MARIE^^^^L~DURAND^JP^^^^^D');
    msg.setRaw('PID-32', 'QUAL~DOUTE~FICTI');
    msg.setRaw('PV1-44', '20240301080000');
    msg.setRaw('PV1-45', '20240306110000');
    msg.setRaw('EVN-6', '');
    const u = readPatientUpdate(msg);
    expect(u.traits).toMatchObject({
      birthName: 'MARTIN',
      usedName: 'DURAND',
      firstGivenName: 'JEAN',
      usedGivenName: 'JP',
      givenNames: ['JEAN', 'PIERRE', 'MARIE'],
    });
    expect(u.reliability).toBe('QUAL');
    expect(u.attributes).toEqual(['DOUTE', 'FICTI']);
    expect(u.stay).toMatchObject({ admitTime: '20240301080000', dischargeTime: '20240306110000' });
    // EVN-6 empty: EVN-2.
    expect(u.eventTime).toBe('20240306111154');
  });

  test('without EVN the event time is MSH-7', () => {
    const msg = Hl7Message.parse(
      text(join('SGL', 'admission.er7'))
        .replace('MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240306111154', 'MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240306120000')
        .split('\r')
        .filter((s) => !s.startsWith('EVN|'))
        .join('\r'),
    );
    expect(readPatientUpdate(msg).eventTime).toBe('20240306120000');
  });

  test('a consent or movement value outside its table: PamError 103', () => {
    const bad = Hl7Message.parse(text(join('SGL', 'admission.er7')));
    bad.setRaw('ZFA-9', 'O');
    expect(thrown(() => readPatientUpdate(bad))).toMatchObject({ code: 103, location: { segment: 'ZFA', field: 9 } });
    const zbe = Hl7Message.parse(text(join('SGL', 'admission.er7')));
    zbe.setRaw('ZBE-4', 'DELETE');
    expect(thrown(() => readPatientUpdate(zbe))).toMatchObject({ code: 103, location: { segment: 'ZBE', field: 4 } });
  });

  test('dmpPermissions defaults', () => {
    expect(dmpPermissions(undefined)).toEqual({ feedingAllowed: true, consultationAllowed: false });
    expect(dmpPermissions({})).toEqual({ feedingAllowed: true, consultationAllowed: false });
    expect(dmpPermissions({ feeding: { value: 'IO' }, consultation: { value: 'IC' } })).toEqual({
      feedingAllowed: false,
      consultationAllowed: true,
    });
  });
});
