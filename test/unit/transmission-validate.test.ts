import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Hl7Message } from '../../src/hl7v2/index.js';
import { readFlags, validateTransmission } from '../../src/flows/transmission/validate.js';

const EXAMPLES = '/work/shared/reference/ansforge/hl7v2-exemples';
const FOLDERS = ['Volets/TRANS_DOC_CDA_HL7V2/V2.0', 'Volets/TRANS_DOC_CDA_HL7V2/V2.1', 'Vague 2/Trans_Doc-CDA-HL7V2'];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** ORU / MDM examples (ACKs and ZAM business acknowledgements left out). */
const FILES = FOLDERS.flatMap((f) => walk(join(EXAMPLES, f)))
  .filter((p) => /\.(hl7|er7)$/i.test(p) && !/ack\.(hl7|er7)$/i.test(p))
  .sort();

const load = (p: string) => readFileSync(p, 'utf8').replace(/\r?\n/g, '\r');
const rel = (p: string) => p.slice(EXAMPLES.length + 1);

describe('ANS examples', () => {
  it('finds the MDM and ORU examples of the three folders', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(20);
  });
  it.each(FILES.map((f) => [rel(f), f]))('%s validates without error', (_name, file) => {
    expect(validateTransmission(Hl7Message.parse(load(file)))).toEqual([]);
  });
});

const MDM_T02 = join(
  EXAMPLES,
  'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Transmission initiale MDM/' +
    'message_MDM_CR_Radio_INIT_N1.er7',
);
const MDM_T10 = join(
  EXAMPLES,
  'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Remplacement MDM/' +
    'message_MDM_CR_Radio_RPLC_N1.er7',
);
const ORU = join(
  EXAMPLES,
  'Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7',
);

/** Parses an example after an optional text edit of its segments. */
function msgOf(file: string, edit: (segments: string[]) => string[] = (s) => s): Hl7Message {
  const segments = load(file)
    .split('\r')
    .filter((s) => s.trim());
  return Hl7Message.parse(edit(segments).join('\r') + '\r');
}
const without = (prefix: string) => (segs: string[]) => segs.filter((s) => !s.startsWith(prefix));
/** Occurrence (1-based) of the MetaDMPMSS OBX carrying code. */
function obxOf(msg: Hl7Message, code: string): number {
  return msg.segmentsNamed('OBX').findIndex((s) => s.value(3, 1, 1) === code) + 1;
}
const ingest = (code: number, rule: string, location?: object) =>
  expect.objectContaining({ code, rule, stage: 'ingest', ...(location ? { location } : {}) });

describe('volet rules (one mutation each)', () => {
  it('MSH-21 is required', () => {
    const msg = msgOf(MDM_T02);
    msg.set('MSH-21', '');
    expect(validateTransmission(msg)).toEqual([
      ingest(101, 'MSH-21-required', { segment: 'MSH', sequence: 1, field: 21 }),
    ]);
  });

  it('MSH-21 must name the CISIS_CDA_HL7_V2 profile in version 2.1 (or 2.0)', () => {
    const msg = msgOf(MDM_T02);
    msg.setRaw('MSH-21', '3.0^OTHER');
    expect(validateTransmission(msg)).toEqual([
      ingest(103, 'MSH-21-version', { segment: 'MSH', sequence: 1, field: 21, repetition: 1, component: 1 }),
      ingest(103, 'MSH-21-profile', { segment: 'MSH', sequence: 1, field: 21, repetition: 1, component: 2 }),
    ]);
  });

  it('MDM event other than T02/T10/T04 -> 201, wrong version -> 203, other type -> 200', () => {
    const a = msgOf(MDM_T02);
    a.set('MSH-9.2', 'T99');
    expect(validateTransmission(a)).toEqual([
      ingest(201, 'MSH-9-event', { segment: 'MSH', sequence: 1, field: 9, repetition: 1, component: 2 }),
    ]);
    const b = msgOf(MDM_T02);
    b.set('MSH-12', '2.5');
    expect(validateTransmission(b)).toEqual([
      ingest(203, 'MSH-12-version', { segment: 'MSH', sequence: 1, field: 12 }),
    ]);
    const c = msgOf(MDM_T02);
    c.setRaw('MSH-9', 'ADT^A01^ADT_A01');
    expect(validateTransmission(c)).toEqual([ingest(200, 'MSH-9-type')]);
  });

  it('segment order: MDM without EVN -> 100 at the segment found instead', () => {
    expect(validateTransmission(msgOf(MDM_T02, without('EVN|')))).toEqual([
      expect.objectContaining({
        code: 100,
        rule: 'segment-sequence',
        stage: 'ingest',
        location: { segment: 'PID', sequence: 1 },
      }),
    ]);
  });

  it('segment order: MDM 2.1 without ORC -> 100 at OBR', () => {
    const errors = validateTransmission(msgOf(MDM_T02, without('ORC|')));
    expect(errors).toEqual([ingest(100, 'segment-sequence', { segment: 'OBR', sequence: 1 })]);
  });

  it('segment order: an unknown segment in the middle -> 100 at it', () => {
    const errors = validateTransmission(msgOf(MDM_T02, (s) => [...s.slice(0, 3), 'AL1|1', ...s.slice(3)]));
    expect(errors).toEqual([ingest(100, 'segment-sequence', { segment: 'AL1', sequence: 1 })]);
  });

  it('segment order: PRT outside the first OBX group -> 100', () => {
    const errors = validateTransmission(
      msgOf(ORU, (s) => [...s, 'PRT||UC||REPLY^^participation|||||||||||^^X.400^a@b.fr']),
    );
    expect(errors).toEqual([ingest(100, 'PRT-placement', { segment: 'PRT', sequence: 5 })]);
  });

  it('PID-3 is required', () => {
    const msg = msgOf(MDM_T02);
    msg.set('PID-3', '');
    expect(validateTransmission(msg)).toEqual([
      ingest(101, 'PID-3-required', { segment: 'PID', sequence: 1, field: 3 }),
    ]);
  });

  it('PV1-19 is required when PV1-2 is I', () => {
    const msg = msgOf(ORU);
    msg.set('PV1-19', '');
    expect(validateTransmission(msg)).toEqual([
      ingest(101, 'PV1-19-required', { segment: 'PV1', sequence: 1, field: 19 }),
    ]);
    msg.set('PV1-2', 'N');
    expect(validateTransmission(msg)).toEqual([]);
  });

  it('OBR-4 is required', () => {
    const msg = msgOf(ORU);
    msg.set('OBR-4', '');
    expect(validateTransmission(msg)).toEqual([
      ingest(101, 'OBR-4-required', { segment: 'OBR', sequence: 1, field: 4, repetition: 1, component: 1 }),
    ]);
  });

  it('ORC-1 must agree with the MDM event', () => {
    const msg = msgOf(MDM_T02);
    msg.set('ORC-1', 'RO');
    expect(validateTransmission(msg)).toEqual([
      ingest(207, 'ORC-1-coherence', { segment: 'ORC', sequence: 1, field: 1 }),
    ]);
  });

  it('ORC-1 must be NW, RO or CA', () => {
    const msg = msgOf(MDM_T02);
    msg.set('ORC-1', 'SC');
    expect(validateTransmission(msg)).toEqual([ingest(103, 'ORC-1-value', { segment: 'ORC', sequence: 1, field: 1 })]);
  });

  it('OBX-11 of the document must agree with the event (T02 -> F)', () => {
    const msg = msgOf(MDM_T02);
    msg.set('OBX-11', 'C');
    expect(validateTransmission(msg)).toEqual([
      ingest(207, 'OBX-11-coherence', { segment: 'OBX', sequence: 1, field: 11 }),
    ]);
  });

  it('ORU: OBX-11 of both documents must agree with ORC-1 (NW -> F)', () => {
    const msg = msgOf(ORU);
    msg.set('OBX[1]-11', 'C');
    msg.set('OBX[2]-11', 'D');
    expect(validateTransmission(msg)).toEqual([
      ingest(207, 'OBX-11-coherence', { segment: 'OBX', sequence: 1, field: 11 }),
      ingest(207, 'OBX-11-coherence', { segment: 'OBX', sequence: 2, field: 11 }),
    ]);
  });

  it('TXA-13 is required for T10', () => {
    const msg = msgOf(MDM_T10);
    msg.set('TXA-13', '');
    expect(validateTransmission(msg)).toEqual([
      ingest(101, 'TXA-13-required-for-T10', { segment: 'TXA', sequence: 1, field: 13 }),
    ]);
  });

  it('TXA-12: a full OID, or extension^^root^ISO', () => {
    const a = msgOf(MDM_T02);
    a.set('TXA-12', 'ABC-58132');
    expect(validateTransmission(a)).toEqual([
      ingest(102, 'TXA-12-format', { segment: 'TXA', sequence: 1, field: 12, repetition: 1, component: 1 }),
    ]);
    const b = msgOf(MDM_T02);
    b.setRaw('TXA-12', '58132^^1.2.250.2345.3245.13^ISO');
    expect(validateTransmission(b)).toEqual([]);
    b.setRaw('TXA-12', '58132^^1.2.250.2345.3245.13');
    expect(validateTransmission(b)).toEqual([
      ingest(103, 'TXA-12-format', { segment: 'TXA', sequence: 1, field: 12, repetition: 1, component: 4 }),
    ]);
    const c = msgOf(MDM_T02);
    c.set('TXA-12', '');
    expect(validateTransmission(c)).toEqual([
      ingest(101, 'TXA-12-required', { segment: 'TXA', sequence: 1, field: 12, repetition: 1, component: 1 }),
    ]);
  });

  it('TXA-17 must come from HL7 table 0271', () => {
    const msg = msgOf(MDM_T02);
    msg.set('TXA-17', 'XX');
    expect(validateTransmission(msg)).toEqual([
      ingest(103, 'TXA-17-value', { segment: 'TXA', sequence: 1, field: 17 }),
    ]);
  });

  it('document OBX-2 must be ED and OBX-5 text/XML/Base64', () => {
    const msg = msgOf(MDM_T02);
    msg.set('OBX-2', 'TX');
    msg.set('OBX-5.4', 'A');
    expect(validateTransmission(msg)).toEqual([
      ingest(102, 'OBX-2-document', { segment: 'OBX', sequence: 1, field: 2 }),
      ingest(103, 'OBX-5-encoding', { segment: 'OBX', sequence: 1, field: 5, repetition: 1, component: 4 }),
    ]);
  });

  it('MetaDMPMSS values other than Y/N -> 103, and readFlags leaves them out', () => {
    const msg = msgOf(ORU);
    const n = obxOf(msg, 'DESTDMP');
    msg.set(`OBX[${n}]-5.1`, 'O');
    expect(validateTransmission(msg)).toEqual([
      ingest(103, 'MetaDMPMSS-value', { segment: 'OBX', sequence: n, field: 5, repetition: 1, component: 1 }),
    ]);
    const { flags, errors } = readFlags(msg);
    expect(flags.DESTDMP).toBeUndefined();
    expect(flags.DESTMSSANTEPS).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it('readFlags reads every Y/N flag', () => {
    expect(readFlags(msgOf(ORU))).toEqual({
      flags: {
        MASQUE_PS: false,
        INVISIBLE_PATIENT: false,
        INVISIBLE_REP_LEGAUX: false,
        CONNEXION_SECRETE: false,
        MODIF_CONF_CODE: false,
        DESTDMP: true,
        DESTMSSANTEPS: true,
        DESTMSSANTEPAT: true,
        ACK_RECEPTION: true,
        ACK_LECTURE_MSS: true,
      },
      errors: [],
    });
  });

  it('a required MetaDMPMSS OBX missing -> 100', () => {
    expect(validateTransmission(msgOf(ORU, (s) => s.filter((x) => !x.includes('|MASQUE_PS^'))))).toEqual([
      ingest(100, 'MetaDMPMSS-required', { segment: 'OBX' }),
    ]);
  });

  it('MetaDMPMSS flags out of order -> 100 at the late one', () => {
    const msg = msgOf(ORU, (s) => {
      const i = s.findIndex((x) => x.includes('|MASQUE_PS^'));
      const j = s.findIndex((x) => x.includes('|INVISIBLE_PATIENT^'));
      const out = [...s];
      [out[i], out[j]] = [s[j]!, s[i]!];
      return out;
    });
    expect(validateTransmission(msg)).toEqual([ingest(100, 'MetaDMPMSS-order', { segment: 'OBX', sequence: 4 })]);
  });

  it('MSSanté matrix: sending to the patient a document invisible to the patient -> 207', () => {
    const msg = msgOf(ORU);
    const n = obxOf(msg, 'INVISIBLE_PATIENT');
    msg.set(`OBX[${n}]-5.1`, 'Y');
    expect(validateTransmission(msg)).toEqual([
      ingest(207, 'MSSante-matrix', { segment: 'OBX', sequence: n, field: 5, repetition: 1, component: 1 }),
    ]);
  });

  it('MSSanté matrix: patient only requires DESTDMP=N and CONNEXION_SECRETE=N', () => {
    const msg = msgOf(ORU);
    msg.set(`OBX[${obxOf(msg, 'DESTMSSANTEPS')}]-5.1`, 'N');
    msg.set(`OBX[${obxOf(msg, 'CONNEXION_SECRETE')}]-5.1`, 'Y');
    expect(validateTransmission(msg)).toEqual([
      ingest(207, 'MSSante-matrix', {
        segment: 'OBX',
        sequence: obxOf(msg, 'CONNEXION_SECRETE'),
        field: 5,
        repetition: 1,
        component: 1,
      }),
      ingest(207, 'MSSante-matrix', {
        segment: 'OBX',
        sequence: obxOf(msg, 'DESTDMP'),
        field: 5,
        repetition: 1,
        component: 1,
      }),
    ]);
  });

  it('MSSanté matrix: professional-only row is lenient on INVISIBLE_* by default, literal in strict mode', () => {
    const msg = msgOf(MDM_T10);
    expect(validateTransmission(msg)).toEqual([]);
    expect(validateTransmission(msg, { strictMssanteMatrix: true })).toEqual([
      ingest(207, 'MSSante-matrix', {
        segment: 'OBX',
        sequence: obxOf(msg, 'INVISIBLE_PATIENT'),
        field: 5,
        repetition: 1,
        component: 1,
      }),
    ]);
  });

  it('a RCT PRT is required when DESTMSSANTEPS=Y', () => {
    const errors = validateTransmission(msgOf(MDM_T02, without('PRT||UC||RCT')));
    expect(errors).toEqual([ingest(100, 'PRT-RCT-required-for-DESTMSSANTEPS', { segment: 'PRT' })]);
  });

  it('a RCT PRT with a patient address is required when DESTMSSANTEPAT=Y', () => {
    const errors = validateTransmission(msgOf(ORU, (s) => s.filter((x) => !x.includes('@patient.mssante.fr'))));
    expect(errors).toEqual([ingest(100, 'PRT-RCT-required-for-DESTMSSANTEPAT', { segment: 'PRT' })]);
  });

  it('a SB PRT is required when DESTDMP=Y', () => {
    const errors = validateTransmission(msgOf(MDM_T02, without('PRT||UC||SB')));
    expect(errors).toEqual([ingest(100, 'PRT-SB-required-for-DMP', { segment: 'PRT' })]);
  });

  it('recipient address must be well formed (PRT-15.4)', () => {
    const msg = msgOf(ORU);
    msg.set('PRT[2]-15.4', 'adam.hoda at test-ci-sis');
    expect(validateTransmission(msg)).toEqual([
      ingest(102, 'PRT-RCT-address', { segment: 'PRT', sequence: 2, field: 15, repetition: 1, component: 4 }),
    ]);
  });

  it('recipient address is required (PRT-15.4) and PRT-15.3 is X.400', () => {
    const msg = msgOf(MDM_T02);
    msg.set('PRT[2]-15.3', 'Internet');
    expect(validateTransmission(msg)).toEqual([
      ingest(103, 'PRT-RCT-equipment', { segment: 'PRT', sequence: 2, field: 15, repetition: 1, component: 3 }),
    ]);
  });

  it('PRT-4 must be SB, RCT or REPLY', () => {
    const msg = msgOf(MDM_T02);
    msg.set('PRT[2]-4.1', 'XYZ');
    const errors = validateTransmission(msg);
    expect(errors[0]).toEqual(
      ingest(103, 'PRT-4-value', { segment: 'PRT', sequence: 2, field: 4, repetition: 1, component: 1 }),
    );
  });
});
