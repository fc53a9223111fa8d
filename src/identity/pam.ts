/**
 * Reader of IHE PAM national extension France (2.11) ADT messages into a typed patient update:
 * identifiers and INS (PID-3), identity traits (PID-5, PID-7, PID-8, PID-11 BDL), identity status
 * and attributes (PID-32), stay (PV1), movement (ZBE), DMP status and consent (ZFA) and the prior
 * identifiers of a merge or an identifier change (MRG-1).
 *
 * Pure: no store, no network. An INS whose key is wrong is read with valid=false (refusing it is
 * the ingest's business); only what makes the update unusable throws a PamError, whose code is the
 * HL7 table 0357 code an ACK would carry in ERR-3.
 *
 * Field meanings (PAM FR 2.11, checked against the ANS examples of "Consentement_DMP_PAMFR" and SGL):
 * - PID-5: one repetition per name type; PID-5.7 = L: birth name (nom de naissance), with PID-5.2
 *   the first birth given name and PID-5.3 the list of birth given names separated by spaces
 *   (the examples send PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L: the list includes the first one);
 *   PID-5.7 = D: used name (nom utilisé) and used given name (prénom utilisé) in PID-5.2.
 * - PID-11: the repetition with PID-11.7 = BDL is the birth place, its INSEE code in PID-11.9.
 * - PID-32: repeated; the identity status (PROV, VALI, RECUP, QUAL) and identity attributes
 *   (e.g. DOUTE, FICTI, HOMON) as further repetitions.
 * - ZBE-1 movement id (EI), ZBE-2 movement start, ZBE-3 movement end (not used in France),
 *   ZBE-4 action INSERT | UPDATE | CANCEL.
 * - ZFA-1 DMP status, ZFA-2 its date, ZFA-3 closure date, ZFA-4..8 not used, ZFA-9 feeding
 *   (IO: informed, opposes; INO: informed, does not oppose; NA: not collected), ZFA-10 its date,
 *   ZFA-11 consultation (IC: informed, consents; INC: informed, does not consent; NA), ZFA-12 its date.
 */
import type { Hl7Message, Hl7Segment } from '../hl7v2/message.js';
import { clean, cx, cxList, opt, readTraits, repetitions, type Identifier, type PatientTraits } from './pid.js';

export type { Identifier } from './pid.js';
import { checkIns, isInsOid } from './ins.js';
import { PfiError } from '../errors.js';

export interface PatientUpdate {
  /** MSH-9.2, e.g. A01. */
  event: string;
  /** EVN-6 if present, else EVN-2, else MSH-7 (HL7 TS as sent). */
  eventTime: string;
  /** PID-3. */
  ids: Identifier[];
  ins?: { matricule: string; oid: string; valid: boolean; reason?: string };
  traits: PatientTraits;
  /** PID-32 identity status: PROV | VALI | RECUP | QUAL. */
  reliability?: string;
  /** The further PID-32 repetitions: identity attributes (DOUTE, FICTI, HOMON...). */
  attributes: string[];
  stay?: { visit: Identifier; patientClass?: string; admitTime?: string; dischargeTime?: string };
  movement?: { id?: string; time?: string; action?: string };
  consent?: {
    dmpStatus?: string;
    feeding?: { value: string; date?: string };
    consultation?: { value: string; date?: string };
  };
  /** MRG-1: for A40 the identifiers merged away, for A47 the identifiers before the change. */
  previousIds?: Identifier[];
}

export type PamErrorCode = 100 | 101 | 102 | 103;

export interface PamErrorLocation {
  segment: string;
  field?: number;
  repetition?: number;
  component?: number;
}

export class PamError extends PfiError {
  constructor(
    readonly code: PamErrorCode,
    message: string,
    readonly location?: PamErrorLocation,
  ) {
    super('pam', message);
    this.name = 'PamError';
  }
}

export const IDENTITY_STATUSES = ['PROV', 'VALI', 'RECUP', 'QUAL'] as const;
export const MOVEMENT_ACTIONS = ['INSERT', 'UPDATE', 'CANCEL'] as const;
/** IHE-FRANCE-ZFA-9: IO informed and opposes, INO informed and does not oppose, NA not collected. */
export const FEEDING_VALUES = ['IO', 'INO', 'NA'] as const;
/** IHE-FRANCE-ZFA-11: IC informed and consents, INC informed and does not consent, NA not collected. */
export const CONSULTATION_VALUES = ['IC', 'INC', 'NA'] as const;

/** Events whose MRG segment is required. */
const MERGE_EVENTS = new Set(['A40', 'A47']);

function readIns(msg: Hl7Message, pid: Hl7Segment): PatientUpdate['ins'] {
  for (let r = 1; r <= repetitions(msg, pid, 3); r++) {
    const p = `PID-3[${r}]`;
    const matricule = opt(msg.get(`${p}.1`));
    const oid = msg.get(`${p}.4.2`) ?? '';
    if (!matricule || (msg.get(`${p}.5`) !== 'INS' && !isInsOid(oid))) continue;
    const check = checkIns(matricule, oid);
    return check.ok ? { matricule, oid, valid: true } : { matricule, oid, valid: false, reason: check.reason };
  }
  return undefined;
}

function readReliability(msg: Hl7Message, pid: Hl7Segment): { reliability?: string; attributes: string[] } {
  const values: string[] = [];
  for (let r = 1; r <= repetitions(msg, pid, 32); r++) {
    const v = opt(msg.get(`PID-32[${r}].1`));
    if (v) values.push(v);
  }
  // The status is the first value, normally; a status sent after an attribute is still found.
  const i = values.findIndex((v) => (IDENTITY_STATUSES as readonly string[]).includes(v));
  return i < 0 ? { attributes: values } : { reliability: values[i], attributes: values.filter((_, k) => k !== i) };
}

function readStay(msg: Hl7Message): PatientUpdate['stay'] {
  if (!msg.segment('PV1')) return undefined;
  const visit = cx(msg, 'PV1-19');
  if (!visit) return undefined;
  return clean({
    visit,
    patientClass: opt(msg.get('PV1-2')),
    admitTime: opt(msg.get('PV1-44.1')),
    dischargeTime: opt(msg.get('PV1-45.1')),
  });
}

function readMovement(msg: Hl7Message): PatientUpdate['movement'] {
  if (!msg.segment('ZBE')) return undefined;
  const action = opt(msg.get('ZBE-4'));
  if (action !== undefined && !(MOVEMENT_ACTIONS as readonly string[]).includes(action)) {
    throw new PamError(103, `ZBE-4 "${action}" is not a movement action (INSERT, UPDATE, CANCEL)`, {
      segment: 'ZBE',
      field: 4,
    });
  }
  return clean({ id: opt(msg.get('ZBE-1.1')), time: opt(msg.get('ZBE-2.1')), action });
}

function readChoice(
  msg: Hl7Message,
  field: number,
  allowed: readonly string[],
  what: string,
): { value: string; date?: string } | undefined {
  const value = opt(msg.get(`ZFA-${field}.1`));
  if (value === undefined) return undefined;
  // A wrong value would otherwise fall back to a default: refuse it rather than guess.
  if (!allowed.includes(value)) {
    throw new PamError(103, `ZFA-${field} "${value}" is not a ${what} value (${allowed.join(', ')})`, {
      segment: 'ZFA',
      field,
    });
  }
  return clean({ value, date: opt(msg.get(`ZFA-${field + 1}.1`)) });
}

function readConsent(msg: Hl7Message): PatientUpdate['consent'] {
  if (!msg.segment('ZFA')) return undefined;
  return clean({
    dmpStatus: opt(msg.get('ZFA-1')),
    feeding: readChoice(msg, 9, FEEDING_VALUES, 'DMP feeding opposition'),
    consultation: readChoice(msg, 11, CONSULTATION_VALUES, 'DMP consultation consent'),
  });
}

function readPrevious(msg: Hl7Message, event: string): Identifier[] | undefined {
  const mrg = msg.segment('MRG');
  if (!mrg) {
    if (MERGE_EVENTS.has(event)) throw new PamError(100, `${event} without MRG segment`, { segment: 'MRG' });
    return undefined;
  }
  const ids = cxList(msg, mrg, 'MRG', 1);
  if (ids.length === 0)
    throw new PamError(101, 'MRG-1 (prior patient identifiers) is empty', { segment: 'MRG', field: 1 });
  return ids;
}

/** Reads a PAM FR ADT message. PamError 100 without PID, 101 when PID-3 holds no identifier. */
export function readPatientUpdate(msg: Hl7Message): PatientUpdate {
  const pid = msg.segment('PID');
  if (!pid) throw new PamError(100, 'No PID segment', { segment: 'PID' });
  const ids = cxList(msg, pid, 'PID', 3);
  if (ids.length === 0) throw new PamError(101, 'PID-3 (patient identifiers) is empty', { segment: 'PID', field: 3 });
  const event = msg.get('MSH-9.2') || msg.get('EVN-1') || '';
  const eventTime = opt(msg.get('EVN-6.1')) ?? opt(msg.get('EVN-2.1')) ?? msg.get('MSH-7.1') ?? '';
  const { reliability, attributes } = readReliability(msg, pid);
  return clean({
    event,
    eventTime,
    ids,
    ins: readIns(msg, pid),
    traits: readTraits(msg, pid),
    reliability,
    attributes,
    stay: readStay(msg),
    movement: readMovement(msg),
    consent: readConsent(msg),
    previousIds: readPrevious(msg, event),
  });
}

/**
 * What the consent means for the DMP. Feeding needs no consent, only the absence of opposition:
 * allowed unless ZFA-9 = IO. Consultation needs the patient's consent: allowed only when ZFA-11 = IC.
 * Nothing known (no ZFA, NA, empty) gives the defaults: feeding allowed, consultation not allowed.
 */
export function dmpPermissions(consent: PatientUpdate['consent'] | undefined): {
  feedingAllowed: boolean;
  consultationAllowed: boolean;
} {
  return {
    feedingAllowed: consent?.feeding?.value !== 'IO',
    consultationAllowed: consent?.consultation?.value === 'IC',
  };
}
