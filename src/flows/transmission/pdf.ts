import { buildN1, N1Error, type N1Input } from '../../cda/n1.js';
import type { Hl7Message } from '../../hl7v2/message.js';
import { MetadataError, type XdsCode } from '../../xds/model.js';
import type { TransmissionMapping } from './mapping.js';
import { readTraits } from '../../identity/pid.js';
import { senderField } from '../../request/participants.js';
import { patientIds } from './metadata.js';

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
    id: {
      root: need('authorInstitution', prt('8.6.2'), 'the sender organisation (PRT SB, PRT-8.6.2)'),
      extension: need('authorInstitution', prt('8.10'), 'the sender organisation id (PRT-8.10)'),
    },
    name: need('authorInstitution', prt('8.1'), 'the sender organisation name (PRT-8.1)'),
  };
  const practice = mapping.defaults.practiceSettingCode;
  if (!practice)
    throw new MetadataError(
      'practiceSettingCode',
      'a PDF needs a practiceSettingCode default in the mapping to become a CDA N1',
    );
  const facility = mapping.defaults.healthcareFacilityTypeCode;
  if (!facility)
    throw new MetadataError(
      'healthcareFacilityTypeCode',
      'a PDF needs a healthcareFacilityTypeCode default in the mapping to become a CDA N1',
    );
  const pid = msg.segment('PID');
  const traits = pid ? readTraits(msg, pid) : { givenNames: [] };
  const input: N1Input = {
    document: {
      id: docRoot ? { root: docRoot, extension: docId } : { root: docId },
      code: {
        code: need('typeCode', get(`OBX[${obx}]-3.1`), 'OBX-3.1'),
        codeSystem: get(`OBX[${obx}]-3.3`) === 'LN' ? LOINC : need('typeCode', get(`OBX[${obx}]-3.3`), 'OBX-3.3'),
        displayName: get(`OBX[${obx}]-3.2`),
      },
      title: need('title', get(`OBX[${obx}]-3.2`), 'OBX-3.2 (the document title)'),
      effectiveTime: time,
    },
    patient: {
      ins: ids.ins && { matricule: ids.ins.id, oid: ids.ins.authority },
      localIds: ids.local ? [{ root: ids.local.authority, extension: ids.local.id }] : undefined,
      birthName: need('sourcePatientInfo', traits.birthName, 'PID-5.1 (birth name)'),
      givenNames: traits.givenNames,
      sex: traits.sex === 'M' || traits.sex === 'F' ? traits.sex : 'U',
      birthDate: need('sourcePatientInfo', traits.birthDate, 'PID-7'),
      birthPlaceCode: traits.birthPlaceCode,
    },
    author: {
      time,
      id: {
        root: need('authorPerson', prt('5.9.2'), 'the sender (PRT SB, PRT-5.9.2)'),
        extension: need('authorPerson', prt('5.1'), 'the sender id (PRT-5.1)'),
      },
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
