/**
 * CDA R2 level 1 (N1) builder: wraps a PDF in an unstructured CDA document (engine extension, used when a
 * CREATEUR sends a PDF in OBX-5 instead of a CDA).
 *
 * The document follows the CI-SIS rules for unstructured documents ("Structuration minimale des documents de
 * santé", IHE XDS-SD) as shown by the ANS examples (IMG-CR-IMG 2024.01 "CDA-R2-Niveau-1", TLM-CR 2022.01, and
 * CR_Radio_CDAN1 of the HL7v2 "Transmission de documents CDA" volet):
 *  - realmCode FR, typeId POCD_HD000040, templateIds HL7 France (2.16.840.1.113883.2.8.2.1), CI-SIS
 *    (1.2.250.1.213.1.1.1.1) and IHE XDS-SD (1.3.6.1.4.1.19376.1.2.20);
 *  - id, code, title, effectiveTime, confidentialityCode, languageCode, setId, versionNumber;
 *  - recordTarget: INS (root = INS OID, extension = matricule) then local ids; name with family BR (birth name),
 *    family CL (used name), one unqualified given holding the birth-certificate given names separated by a space
 *    and given BR (first given name); administrativeGenderCode; birthTime; birthplace/place/addr/county;
 *  - author (time, assignedAuthor id / code / assignedPerson / representedOrganization), custodian,
 *    legalAuthenticator (signatureCode S; the author by default), documentationOf/serviceEvent (effectiveTime,
 *    performer with representedOrganization/standardIndustryClassCode), componentOf/encompassingEncounter
 *    (effectiveTime, location/healthCareFacility/code);
 *  - component/nonXMLBody/text mediaType="application/pdf" representation="B64".
 * Elements are emitted in the order of the CDA R2 schema (POCD_MT000040), so the output validates against
 * CDA_extended.xsd; it reads back through readCdaHeader.
 */
import { randomUUID } from 'node:crypto';
import { create } from 'xmlbuilder2';
import { CDA_NS } from './header.js';
import { PfiError } from '../errors.js';
import { builderText, hasNonXmlChar } from '../util/xml-text.js';

type XMLBuilder = ReturnType<typeof create>;

export interface N1Id {
  root: string;
  extension?: string;
}

export interface N1Code {
  code: string;
  codeSystem: string;
  displayName?: string;
}

export interface N1Input {
  document: {
    id: N1Id;
    /** Default: a new set (2.25 UUID OID), for a first version. */
    setId?: N1Id;
    /** Default 1. */
    versionNumber?: number;
    code: N1Code;
    title: string;
    /** YYYYMMDDHHMMSS[+ZZZZ] */
    effectiveTime: string;
    /** Default N. */
    confidentialityCode?: 'N' | 'R' | 'V';
    /** Default fr-FR. */
    languageCode?: string;
  };
  patient: {
    ins?: { matricule: string; oid: string };
    localIds?: { root: string; extension: string }[];
    birthName: string;
    usedName?: string;
    /** Birth-certificate given names, the first one first (written as one space-separated list + given BR). */
    givenNames: string[];
    sex: 'M' | 'F' | 'U';
    birthDate: string;
    /** INSEE code of the birth place. */
    birthPlaceCode?: string;
  };
  author: {
    time: string;
    /** National PS identifier, e.g. root 1.2.250.1.71.4.2.1, extension '8' + RPPS (written as given). */
    id: { root: string; extension: string };
    family?: string;
    given?: string;
    specialty?: N1Code;
    organization: { id: { root: string; extension: string }; name: string };
  };
  /** Default: the author. */
  legalAuthenticator?: { time: string; id: { root: string; extension: string }; family?: string; given?: string };
  custodian: { id: { root: string; extension: string }; name: string };
  serviceEvent?: {
    start: string;
    end?: string;
    performerOrganization?: { id: { root: string; extension: string }; name: string; practiceSetting?: N1Code };
  };
  encounter?: { start: string; end?: string; healthCareFacility: N1Code };
  pdf: Buffer;
}

/** A required input is missing or unusable; field names it (e.g. 'patient.birthName'). */
export class N1Error extends PfiError {
  override name = 'N1Error';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('n1', message);
  }
}

export const N1_TEMPLATE_IDS = {
  hl7France: '2.16.840.1.113883.2.8.2.1',
  ciSis: '1.2.250.1.213.1.1.1.1',
  xdsSd: '1.3.6.1.4.1.19376.1.2.20',
} as const;

const CONFIDENTIALITY = { N: 'Normal', R: 'Restreint', V: 'Très restreint' } as const;
const SEX = { M: 'Masculin', F: 'Féminin', U: 'Inconnu' } as const;

// ---------------------------------------------------------------------------------------------------------
// Validation (CDA datatype patterns of datatypes-base.xsd, so that a bad input fails here, not at the DMP)

const OID = /^[0-2](\.(0|[1-9][0-9]*))*$/;
const UUID = /^[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{12}$/;
const RUID = /^[A-Za-z][A-Za-z0-9-]*$/;
const TS = /^(?:[0-9]{1,8}|(?:[0-9]{9,14}|[0-9]{14}\.[0-9]+)(?:[+-][0-9]{1,4})?)$/;
const CS = /^\S+$/;

function missing(field: string): N1Error {
  return new N1Error(field, `N1 document: ${field} is required`);
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw missing(field);
  if (hasNonXmlChar(v)) throw new N1Error(field, `N1 document: ${field} holds a character not allowed in XML`);
  return v;
}

function optStr(v: unknown, field: string): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : str(v, field);
}

function uid(v: unknown, field: string): string {
  const s = str(v, field);
  if (!OID.test(s) && !UUID.test(s) && !RUID.test(s))
    throw new N1Error(field, `N1 document: ${field} '${s}' is not an OID or UUID`);
  return s;
}

function ts(v: unknown, field: string): string {
  const s = str(v, field);
  if (!TS.test(s))
    throw new N1Error(field, `N1 document: ${field} '${s}' is not an HL7 date/time (YYYYMMDD[HHMMSS][+ZZZZ])`);
  return s;
}

function token(v: unknown, field: string): string {
  const s = str(v, field);
  if (!CS.test(s)) throw new N1Error(field, `N1 document: ${field} '${s}' must not contain spaces`);
  return s;
}

function id(v: N1Id | undefined, field: string, extensionRequired: boolean): N1Id {
  if (!v || typeof v !== 'object') throw missing(field);
  const root = uid(v.root, `${field}.root`);
  const extension = extensionRequired
    ? str(v.extension, `${field}.extension`)
    : optStr(v.extension, `${field}.extension`);
  return extension === undefined ? { root } : { root, extension };
}

function codeOf(v: N1Code | undefined, field: string): N1Code {
  if (!v || typeof v !== 'object') throw missing(field);
  const c: N1Code = { code: token(v.code, `${field}.code`), codeSystem: uid(v.codeSystem, `${field}.codeSystem`) };
  const dn = optStr(v.displayName, `${field}.displayName`);
  if (dn !== undefined) c.displayName = dn;
  return c;
}

function org(v: { id: { root: string; extension: string }; name: string } | undefined, field: string) {
  if (!v || typeof v !== 'object') throw missing(field);
  return { id: id(v.id, `${field}.id`, true), name: str(v.name, `${field}.name`) };
}

// ---------------------------------------------------------------------------------------------------------
// Builder

function iiAttrs(i: N1Id): Record<string, string> {
  return i.extension === undefined ? { root: i.root } : { root: i.root, extension: i.extension };
}

function cdAttrs(c: N1Code): Record<string, string> {
  const a: Record<string, string> = { code: c.code };
  if (c.displayName !== undefined) a.displayName = c.displayName;
  a.codeSystem = c.codeSystem;
  return a;
}

function interval(parent: XMLBuilder, start: string, end: string | undefined): void {
  const et = parent.ele('effectiveTime');
  et.ele('low', { value: start });
  if (end !== undefined) et.ele('high', { value: end });
}

function personName(parent: XMLBuilder, family: string | undefined, given: string | undefined): void {
  if (family === undefined && given === undefined) return;
  const name = parent.ele('assignedPerson').ele('name');
  if (family !== undefined) name.ele('family').txt(builderText(family));
  if (given !== undefined) name.ele('given').txt(builderText(given));
}

function organization(parent: XMLBuilder, tag: string, o: { id: N1Id; name: string }, practiceSetting?: N1Code): void {
  const el = parent.ele(tag);
  el.ele('id', iiAttrs(o.id));
  el.ele('name').txt(builderText(o.name));
  if (practiceSetting) el.ele('standardIndustryClassCode', cdAttrs(practiceSetting));
}

/** Builds the N1 document (UTF-8 XML); throws N1Error naming the first missing or unusable input. */
export function buildN1(input: N1Input): Buffer {
  if (!input || typeof input !== 'object') throw missing('input');
  const d = input.document;
  if (!d || typeof d !== 'object') throw missing('document');
  const p = input.patient;
  if (!p || typeof p !== 'object') throw missing('patient');
  const a = input.author;
  if (!a || typeof a !== 'object') throw missing('author');

  // Document
  const docId = id(d.id, 'document.id', false);
  const setId =
    d.setId === undefined
      ? { root: '2.25.' + BigInt('0x' + randomUUID().replace(/-/g, '')).toString() }
      : id(d.setId, 'document.setId', false);
  if (setId.root === docId.root && setId.extension === docId.extension) {
    throw new N1Error('document.setId', 'N1 document: document.setId must differ from document.id');
  }
  const version = d.versionNumber ?? 1;
  if (!Number.isSafeInteger(version) || version < 1)
    throw new N1Error('document.versionNumber', 'N1 document: document.versionNumber must be a positive integer');
  const docCode = codeOf(d.code, 'document.code');
  const title = str(d.title, 'document.title');
  const effectiveTime = ts(d.effectiveTime, 'document.effectiveTime');
  const conf = d.confidentialityCode ?? 'N';
  if (!(conf in CONFIDENTIALITY))
    throw new N1Error(
      'document.confidentialityCode',
      `N1 document: document.confidentialityCode '${String(conf)}' is not N, R or V`,
    );
  const lang = d.languageCode === undefined ? 'fr-FR' : token(d.languageCode, 'document.languageCode');

  // Patient
  const ins =
    p.ins === undefined
      ? undefined
      : { oid: uid(p.ins.oid, 'patient.ins.oid'), matricule: token(p.ins.matricule, 'patient.ins.matricule') };
  const localIds = (p.localIds ?? []).map((l, i) => id(l, `patient.localIds[${i}]`, true));
  if (!ins && !localIds.length)
    throw new N1Error('patient.ins', 'N1 document: patient.ins or patient.localIds is required');
  const birthName = str(p.birthName, 'patient.birthName');
  const usedName = optStr(p.usedName, 'patient.usedName');
  if (!Array.isArray(p.givenNames) || !p.givenNames.length) throw missing('patient.givenNames');
  const givenNames = p.givenNames.map((g, i) => str(g, `patient.givenNames[${i}]`).trim());
  if (!(p.sex in SEX)) throw new N1Error('patient.sex', `N1 document: patient.sex '${String(p.sex)}' is not M, F or U`);
  const birthDate = ts(p.birthDate, 'patient.birthDate');
  const birthPlaceCode = optStr(p.birthPlaceCode, 'patient.birthPlaceCode');

  // Author
  const authorTime = ts(a.time, 'author.time');
  const authorId = id(a.id, 'author.id', true);
  const authorFamily = optStr(a.family, 'author.family');
  const authorGiven = optStr(a.given, 'author.given');
  const specialty = a.specialty === undefined ? undefined : codeOf(a.specialty, 'author.specialty');
  const authorOrg = org(a.organization, 'author.organization');

  // Legal authenticator (default: the author)
  const la = input.legalAuthenticator;
  const legal =
    la === undefined
      ? { time: authorTime, id: authorId, family: authorFamily, given: authorGiven }
      : {
          time: ts(la.time, 'legalAuthenticator.time'),
          id: id(la.id, 'legalAuthenticator.id', true),
          family: optStr(la.family, 'legalAuthenticator.family'),
          given: optStr(la.given, 'legalAuthenticator.given'),
        };

  const custodian = org(input.custodian, 'custodian');

  const se = input.serviceEvent;
  const serviceEvent =
    se === undefined
      ? undefined
      : {
          start: ts(se.start, 'serviceEvent.start'),
          end: se.end === undefined ? undefined : ts(se.end, 'serviceEvent.end'),
          performer:
            se.performerOrganization === undefined
              ? undefined
              : {
                  ...org(se.performerOrganization, 'serviceEvent.performerOrganization'),
                  practiceSetting:
                    se.performerOrganization.practiceSetting === undefined
                      ? undefined
                      : codeOf(
                          se.performerOrganization.practiceSetting,
                          'serviceEvent.performerOrganization.practiceSetting',
                        ),
                },
        };

  const en = input.encounter;
  const encounter =
    en === undefined
      ? undefined
      : {
          start: ts(en.start, 'encounter.start'),
          end: en.end === undefined ? undefined : ts(en.end, 'encounter.end'),
          facility: codeOf(en.healthCareFacility, 'encounter.healthCareFacility'),
        };

  const pdf = input.pdf;
  if (!Buffer.isBuffer(pdf) || pdf.length === 0) throw missing('pdf');
  if (pdf.subarray(0, 1024).indexOf('%PDF-') < 0)
    throw new N1Error('pdf', 'N1 document: pdf is not a PDF (no %PDF- header)');

  // ---- XML, in POCD_MT000040 order
  const doc = create({ version: '1.0', encoding: 'UTF-8' });
  const cd = doc.ele(CDA_NS, 'ClinicalDocument');
  cd.ele('realmCode', { code: 'FR' });
  cd.ele('typeId', { root: '2.16.840.1.113883.1.3', extension: 'POCD_HD000040' });
  cd.ele('templateId', { root: N1_TEMPLATE_IDS.hl7France });
  cd.ele('templateId', { root: N1_TEMPLATE_IDS.ciSis });
  cd.ele('templateId', { root: N1_TEMPLATE_IDS.xdsSd });
  cd.ele('id', iiAttrs(docId));
  cd.ele('code', cdAttrs(docCode));
  cd.ele('title').txt(builderText(title));
  cd.ele('effectiveTime', { value: effectiveTime });
  cd.ele('confidentialityCode', {
    code: conf,
    displayName: CONFIDENTIALITY[conf],
    codeSystem: '2.16.840.1.113883.5.25',
  });
  cd.ele('languageCode', { code: lang });
  cd.ele('setId', iiAttrs(setId));
  cd.ele('versionNumber', { value: String(version) });

  const role = cd.ele('recordTarget').ele('patientRole');
  if (ins) role.ele('id', { root: ins.oid, extension: ins.matricule });
  for (const l of localIds) role.ele('id', iiAttrs(l));
  const patient = role.ele('patient', { classCode: 'PSN' });
  const name = patient.ele('name');
  name.ele('family', { qualifier: 'BR' }).txt(builderText(birthName));
  name.ele('given').txt(builderText(givenNames.join(' ')));
  name.ele('given', { qualifier: 'BR' }).txt(builderText(givenNames[0]!));
  if (usedName !== undefined) name.ele('family', { qualifier: 'CL' }).txt(builderText(usedName));
  patient.ele('administrativeGenderCode', {
    code: p.sex,
    displayName: SEX[p.sex],
    codeSystem: '2.16.840.1.113883.5.1',
  });
  patient.ele('birthTime', { value: birthDate });
  if (birthPlaceCode !== undefined)
    patient.ele('birthplace').ele('place').ele('addr').ele('county').txt(builderText(birthPlaceCode));

  const author = cd.ele('author');
  author.ele('time', { value: authorTime });
  const aa = author.ele('assignedAuthor');
  aa.ele('id', iiAttrs(authorId));
  if (specialty) aa.ele('code', cdAttrs(specialty));
  personName(aa, authorFamily, authorGiven);
  organization(aa, 'representedOrganization', authorOrg);

  organization(cd.ele('custodian').ele('assignedCustodian'), 'representedCustodianOrganization', custodian);

  const legalEl = cd.ele('legalAuthenticator');
  legalEl.ele('time', { value: legal.time });
  legalEl.ele('signatureCode', { code: 'S' });
  const le = legalEl.ele('assignedEntity');
  le.ele('id', iiAttrs(legal.id));
  personName(le, legal.family, legal.given);

  if (serviceEvent) {
    const sev = cd.ele('documentationOf').ele('serviceEvent', { classCode: 'ACT' });
    interval(sev, serviceEvent.start, serviceEvent.end);
    if (serviceEvent.performer) {
      // The performing professional is not known here: id nullFlavor UNK (as in the CI-SIS CR_Radio_CDAN1 example).
      const pe = sev.ele('performer', { typeCode: 'PRF' }).ele('assignedEntity');
      pe.ele('id', { nullFlavor: 'UNK' });
      organization(pe, 'representedOrganization', serviceEvent.performer, serviceEvent.performer.practiceSetting);
    }
  }

  if (encounter) {
    const ee = cd.ele('componentOf').ele('encompassingEncounter');
    interval(ee, encounter.start, encounter.end);
    ee.ele('location').ele('healthCareFacility').ele('code', cdAttrs(encounter.facility));
  }

  cd.ele('component')
    .ele('nonXMLBody')
    .ele('text', { mediaType: 'application/pdf', representation: 'B64' })
    .txt(pdf.toString('base64'));

  return Buffer.from(doc.end({ prettyPrint: true }) + '\n', 'utf8');
}
