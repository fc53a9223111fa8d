import { createHash, randomUUID } from 'node:crypto';
import { senderField } from '../../request/participants.js';
import type { CdaHeader, Code } from '../../cda/header.js';
import { cxList, isInsIdentifier, type Identifier } from '../../identity/pid.js';
import type { Hl7Message } from '../../hl7v2/message.js';
import {
  MetadataError,
  type DocumentEntry,
  type SubmissionSet,
  type XdsAuthor,
  type XdsCode,
  type XdsPatientId,
} from '../../xds/model.js';
import type { Terminology } from '../../xds/terminology.js';
import type { TransmissionMapping } from './mapping.js';
import type { TransmissionFlags } from './validate.js';

/** TRE_A07 (statut de visibilité), the confidentiality codes the OBX flags add. */
const TRE_A07 = '1.2.250.1.213.1.1.4.13';
/** HL7 Confidentiality (N, R, V). */
const HL7_CONFIDENTIALITY = '2.16.840.1.113883.5.25';
const OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;

/** The OBX flag and the DMP's code for it (the DMP spells the last one out). */
const VISIBILITY: [keyof TransmissionFlags, string][] = [
  ['MASQUE_PS', 'MASQUE_PS'],
  ['INVISIBLE_PATIENT', 'INVISIBLE_PATIENT'],
  ['INVISIBLE_REP_LEGAUX', 'INVISIBLE_REPRESENTANTS_LEGAUX'],
];

export interface MetadataContext {
  msg: Hl7Message;
  flags: TransmissionFlags;
  terminology: Terminology;
  mapping: TransmissionMapping;
  now?: Date;
}

/** The patient as PID-3 names it: the INS (if any) and the local identifier. */
export interface PatientIds {
  ins?: XdsPatientId;
  local?: XdsPatientId;
  /** Every PID-3 identifier, `id` + authority OID, for the comparison with the CDA's recordTarget. */
  all: Identifier[];
}

export function patientIds(msg: Hl7Message): PatientIds {
  const pid = msg.segment('PID');
  const all = pid ? cxList(msg, pid, 'PID', 3) : [];
  const ins = all.find(isInsIdentifier);
  const local = all.find((x) => x !== ins && (x.type === 'PI' || !x.type));
  return {
    all,
    ins: ins && { id: ins.id, authority: ins.authority, type: 'NH' },
    local: local && { id: local.id, authority: local.authority, type: 'PI' },
  };
}

/** XDS uniqueId of a CDA id: `root^extension`, or the root alone. */
export function xdsUniqueId(id: { root: string; extension?: string }): string {
  return id.extension ? `${id.root}^${id.extension}` : id.root;
}

/**
 * One DocumentEntry per document, from its CDA header and the message, per the volet's mapping
 * table (mapping.md). A required metadata that cannot be filled throws a MetadataError naming it.
 */
export function documentEntry(ctx: MetadataContext, header: CdaHeader, bytes: Buffer): DocumentEntry {
  const { terminology, mapping, flags, msg } = ctx;
  const ids = patientIds(msg);
  const typeCode = code('typeCode', header.code);
  const classCode = terminology.classCodeFor(typeCode.code, typeCode.scheme);
  if (!classCode) throw new MetadataError('classCode', `no class for typeCode ${typeCode.code} in ASS_X16 / ASS_X04`);
  const mediaType = header.body.kind === 'nonXMLBody' ? header.body.mediaType : undefined;
  const format = terminology.formatCodeFor(
    header.templateIds.map((t) => t.root),
    mediaType ? { mediaType } : {},
  );
  if (!format)
    throw new MetadataError(
      'formatCode',
      `no formatCode for the templateIds ${header.templateIds.map((t) => t.root).join(', ')} in ASS_A11`,
    );
  const facility = header.encounter?.healthCareFacilityCode?.code
    ? code('healthcareFacilityTypeCode', header.encounter.healthCareFacilityCode)
    : mapping.defaults.healthcareFacilityTypeCode;
  if (!facility)
    throw new MetadataError(
      'healthcareFacilityTypeCode',
      'the CDA has no componentOf/encompassingEncounter/location/healthCareFacility/code and the mapping no default',
    );
  const setting = header.serviceEvents.find((e) => e.performerOrganization?.standardIndustryClassCode?.code)
    ?.performerOrganization?.standardIndustryClassCode;
  const practice = setting ? code('practiceSettingCode', setting) : mapping.defaults.practiceSettingCode;
  if (!practice)
    throw new MetadataError(
      'practiceSettingCode',
      'the CDA has no documentationOf/serviceEvent/performer standardIndustryClassCode and the mapping no default',
    );
  if (!header.title) throw new MetadataError('title', 'the CDA has no title');
  if (!header.languageCode) throw new MetadataError('languageCode', 'the CDA has no languageCode');
  if (!header.effectiveTime) throw new MetadataError('creationTime', 'the CDA has no effectiveTime');
  // The DMP's own needs (an INS, a service start time, a J66 type) are the DMP gate's to check
  // (src/dmp/gate.ts): a request the DMP cannot take may still go by MSSanté.
  const patientId = ids.ins ?? ids.local;
  if (!patientId) throw new MetadataError('patientId', 'PID-3 has no identifier');
  const service = header.serviceEvents[0];

  return {
    entryUUID: `urn:uuid:${randomUUID()}`,
    uniqueId: xdsUniqueId(header.id),
    mimeType: header.selfPresenting ? 'application/xslt+xml' : 'text/xml',
    title: header.title,
    typeCode,
    classCode: { code: classCode.code, scheme: classCode.system, display: classCode.display },
    formatCode: { code: format.code, scheme: oid('formatCode', format.system), display: format.display },
    confidentialityCodes: confidentiality(header, flags, terminology),
    healthcareFacilityTypeCode: facility,
    practiceSettingCode: practice,
    languageCode: header.languageCode,
    creationTime: utc(header.effectiveTime),
    serviceStartTime: service?.start ? utc(service.start) : undefined,
    serviceStopTime: service?.end ? utc(service.end) : undefined,
    patientId,
    sourcePatientId: ids.local ?? patientId,
    sourcePatientInfo: sourcePatientInfo(msg),
    authors: header.authors.map((a): XdsAuthor => ({
      person: a.person && {
        id: a.person.id?.extension,
        idAuthority: a.person.id?.root,
        family: a.person.family,
        given: a.person.given?.join(' '),
      },
      institutions: a.organization
        ? [{ name: a.organization.name, id: a.organization.id?.extension, idAuthority: a.organization.id?.root }]
        : [],
      roles: a.person?.functionCode?.displayName ? [a.person.functionCode.displayName] : [],
      specialties: a.person?.specialty?.code ? [code('authorSpecialty', a.person.specialty)] : [],
    })),
    legalAuthenticator: header.legalAuthenticator && {
      id: header.legalAuthenticator.id?.extension,
      idAuthority: header.legalAuthenticator.id?.root,
      family: header.legalAuthenticator.family,
      given: header.legalAuthenticator.given?.join(' '),
    },
    eventCodes: [],
    // XDS CXi: the orders the document answers (urn:ihe:iti:xds:2013:order).
    referenceIds: header.orderIds
      .filter((o) => o.extension)
      .map((o) => `${o.extension}^^^&${o.root}&ISO^urn:ihe:iti:xds:2013:order`),
    hash: createHash('sha1').update(bytes).digest('hex'),
    size: bytes.length,
  };
}

/** The SubmissionSet: its author is the sender of the request (PRT SB), its type of activity from PV1-2. */
export function submissionSet(ctx: MetadataContext, patientId: XdsPatientId): SubmissionSet {
  const { msg, mapping } = ctx;
  const now = ctx.now ?? new Date();
  const pv12 = msg.get('PV1-2') ?? '';
  const contentTypeCode = mapping.contentTypeCode[pv12] ?? mapping.defaults.contentTypeCode;
  if (!contentTypeCode)
    throw new MetadataError(
      'contentTypeCode',
      `PV1-2 "${pv12}" is not in the mapping's contentTypeCode table and there is no default`,
    );
  const at = senderField(msg);
  const author: XdsAuthor = {
    person: at('5.1') ? { id: at('5.1'), family: at('5.2'), given: at('5.3'), idAuthority: at('5.9.2') } : undefined,
    institutions: at('8.1') ? [{ name: at('8.1'), id: at('8.10'), idAuthority: at('8.6.2') }] : [],
    roles: [],
    specialties: [],
  };
  if (!author.person?.id)
    throw new MetadataError('authorPerson', 'the request has no PRT with PRT-4 = SB and PRT-5.1 (the sender)');
  return {
    entryUUID: `urn:uuid:${randomUUID()}`,
    uniqueId: `${mapping.submissionSetIdRoot}.${now.getTime()}${micros()}`,
    sourceId: mapping.sourceId,
    submissionTime: utc(now.toISOString().replace(/[-:T]/g, '').slice(0, 14) + '+0000'),
    contentTypeCode,
    patientId,
    author,
  };
}

function confidentiality(header: CdaHeader, flags: TransmissionFlags, terminology: Terminology): XdsCode[] {
  const out: XdsCode[] = [];
  const c = header.confidentialityCode;
  if (!c?.code) throw new MetadataError('confidentialityCode', 'the CDA has no confidentialityCode');
  out.push({ code: c.code, scheme: c.codeSystem ?? HL7_CONFIDENTIALITY, display: c.displayName });
  for (const [flag, dmpCode] of VISIBILITY) {
    if (flags[flag]) out.push({ code: dmpCode, scheme: TRE_A07, display: terminology.display('J58', dmpCode) });
  }
  return out;
}

function sourcePatientInfo(msg: Hl7Message): string[] {
  const lines: string[] = [];
  for (const f of [3, 5, 7, 8]) {
    const raw = msg.segment('PID')?.field(f);
    if (!raw) continue;
    for (const rep of raw.split(msg.delimiters.repetition)) if (rep) lines.push(`PID-${f}|${rep}`);
  }
  return lines;
}

function code(field: string, c: Code): XdsCode {
  if (!c.code) throw new MetadataError(field, 'no code');
  return { code: c.code, scheme: oid(field, c.codeSystem), display: c.displayName };
}

function oid(field: string, scheme: string | undefined): string {
  if (!scheme || !OID.test(scheme)) throw new MetadataError(field, `code system "${scheme ?? ''}" is not an OID`);
  return scheme;
}

/**
 * XDS wants UTC (YYYYMMDDHHMMSS, or shorter for a date). A CDA time with an offset is converted; a
 * time without one is taken as written (the CI-SIS requires the offset on times).
 */
/** Six digits that differ between two calls of one millisecond (a uniqueId must be unique). */
function micros(): string {
  return String(process.hrtime.bigint() % 1000000n).padStart(6, '0');
}

export function utc(t: string): string {
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$/.exec(t.trim());
  if (!m) throw new MetadataError('time', `"${t}" is not an HL7 time`);
  const [, y, mo, d, h, mi, s, tz] = m;
  if (!tz || !h) return [y, mo, d, h, mi, s].filter(Boolean).join('');
  const sign = tz[0] === '-' ? -1 : 1;
  const offset = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(3, 5)));
  const date = new Date(Date.UTC(+y!, +(mo ?? 1) - 1, +(d ?? 1), +h, +(mi ?? 0), +(s ?? 0)) - offset * 60_000);
  const full = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return full.slice(0, [y, mo, d, h, mi, s].filter(Boolean).join('').length);
}
