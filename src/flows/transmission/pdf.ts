import { buildN1, N1Error, type N1Input } from '../../cda/n1.js';
import type { Hl7Message } from '../../hl7v2/message.js';
import { MetadataError, type XdsCode } from '../../xds/model.js';
import type { TransmissionMapping } from './mapping.js';
import { patientIds, senderField } from './metadata.js';

const LOINC = '2.16.840.1.113883.6.1';

/**
 * Engine extension: a CREATEUR that sends a PDF (OBX-5 `^application^PDF^Base64^...`) instead of a
 * CDA gets it wrapped in a CDA R2 level 1 built from the message (PID, PV1, TXA, PRT SB) and the
 * channel's mapping (what the message cannot say: practice setting, facility type). The result is
 * then read like any CDA.
 */
export function n1FromMessage(msg: Hl7Message, obx: number, pdf: Buffer, mapping: TransmissionMapping): Buffer {
  const get = (path: string) => msg.get(path)?.trim() || undefined;
  const need = (field: string, value: string | undefined, what: string): string => {
    if (!value) throw new MetadataError(field, `a PDF needs ${what} to become a CDA N1`);
    return value;
  };
  const ids = patientIds(msg);
  const prt = senderField(msg);
  const time = need('effectiveTime', get('TXA-4') ?? get('EVN-2') ?? get('MSH-7'), 'TXA-4 (or EVN-2)');
  const docRoot = get('TXA-12.3');
  const docId = need('uniqueId', get('TXA-12.1'), 'TXA-12');
  const organization = {
    id: { root: need('authorInstitution', prt('8.6.2'), 'the sender organisation (PRT SB, PRT-8.6.2)'), extension: need('authorInstitution', prt('8.10'), 'the sender organisation id (PRT-8.10)') },
    name: need('authorInstitution', prt('8.1'), 'the sender organisation name (PRT-8.1)'),
  };
  const practice = mapping.defaults.practiceSettingCode;
  if (!practice) throw new MetadataError('practiceSettingCode', 'a PDF needs a practiceSettingCode default in the mapping to become a CDA N1');
  const facility = mapping.defaults.healthcareFacilityTypeCode;
  if (!facility) throw new MetadataError('healthcareFacilityTypeCode', 'a PDF needs a healthcareFacilityTypeCode default in the mapping to become a CDA N1');
  const birthPlace = birthPlaceCode(msg);
  const input: N1Input = {
    document: {
      id: docRoot ? { root: docRoot, extension: docId } : { root: docId },
      code: { code: need('typeCode', get(`OBX[${obx}]-3.1`), 'OBX-3.1'), codeSystem: get(`OBX[${obx}]-3.3`) === 'LN' ? LOINC : need('typeCode', get(`OBX[${obx}]-3.3`), 'OBX-3.3'), displayName: get(`OBX[${obx}]-3.2`) },
      title: need('title', get(`OBX[${obx}]-3.2`), 'OBX-3.2 (the document title)'),
      effectiveTime: time,
    },
    patient: {
      ins: ids.ins && { matricule: ids.ins.id, oid: ids.ins.authority },
      localIds: ids.local ? [{ root: ids.local.authority, extension: ids.local.id }] : undefined,
      birthName: need('sourcePatientInfo', get('PID-5.1'), 'PID-5.1'),
      givenNames: (get('PID-5.2') ?? '').split(' ').filter(Boolean),
      sex: (['M', 'F'].includes(get('PID-8') ?? '') ? get('PID-8') : 'U') as 'M' | 'F' | 'U',
      birthDate: need('sourcePatientInfo', get('PID-7'), 'PID-7'),
      birthPlaceCode: birthPlace,
    },
    author: {
      time,
      id: { root: need('authorPerson', prt('5.9.2'), 'the sender (PRT SB, PRT-5.9.2)'), extension: need('authorPerson', prt('5.1'), 'the sender id (PRT-5.1)') },
      family: prt('5.2'),
      given: prt('5.3'),
      organization,
    },
    custodian: organization,
    serviceEvent: { start: time, performerOrganization: { ...organization, practiceSetting: code(practice) } },
    encounter: { start: get('PV1-44') ?? time, healthCareFacility: code(facility) },
    pdf,
  };
  try {
    return buildN1(input);
  } catch (e) {
    if (e instanceof N1Error) throw new MetadataError(e.field, e.message);
    throw e;
  }
}

function code(c: XdsCode) {
  return { code: c.code, codeSystem: c.scheme, displayName: c.display };
}

/** The INSEE code of the birth place: PID-11 repetition of type BDL, component 9. */
function birthPlaceCode(msg: Hl7Message): string | undefined {
  const raw = msg.segment('PID')?.field(11) ?? '';
  const reps = raw ? raw.split(msg.delimiters.repetition).length : 0;
  for (let r = 1; r <= reps; r++) if (msg.get(`PID-11[${r}].7`) === 'BDL') return msg.get(`PID-11[${r}].9`) || undefined;
  return undefined;
}
