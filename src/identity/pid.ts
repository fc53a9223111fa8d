/**
 * The patient as PID says it, read the same way by every flow: identifiers (PID-3 and any CX list)
 * and identity traits (PID-5, PID-7, PID-8, PID-11 BDL). See pam.ts for the field meanings.
 */
import type { Hl7Message, Hl7Segment } from '../hl7v2/message.js';
import { isInsOid } from './ins.js';

export interface Identifier {
  id: string;
  /** CX-4: universal id (OID, FINESS...) when sent, else the namespace id. */
  authority: string;
  /** CX-5 identifier type code: PI, INS, VN, AN... */
  type: string;
}

/** '' and undefined both mean absent. */
export function opt(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** The number of repetitions of a field (0 when absent or empty). */
export function repetitions(msg: Hl7Message, seg: Hl7Segment, field: number): number {
  const raw = seg.field(field);
  if (raw === undefined || raw === '') return 0;
  return seg.repetitionsOf(field).length;
}

export function cx(msg: Hl7Message, path: string): Identifier | undefined {
  const id = opt(msg.get(`${path}.1`));
  if (!id) return undefined;
  const authority = opt(msg.get(`${path}.4.2`)) ?? msg.get(`${path}.4.1`) ?? '';
  return { id, authority, type: msg.get(`${path}.5`) ?? '' };
}

export function cxList(msg: Hl7Message, seg: Hl7Segment, name: string, field: number): Identifier[] {
  const out: Identifier[] = [];
  for (let r = 1; r <= repetitions(msg, seg, field); r++) {
    const i = cx(msg, `${name}-${field}[${r}]`);
    if (i) out.push(i);
  }
  return out;
}

/** The patient's traits as the PID gives them (PAM FR: birth name, given names, birth place...). */
export interface PatientTraits {
  birthName?: string;
  usedName?: string;
  givenNames: string[];
  firstGivenName?: string;
  /** Prénom utilisé: PID-5.2 of the D repetition (addition to the brief). */
  usedGivenName?: string;
  birthDate?: string;
  sex?: string;
  birthPlaceCode?: string;
}

/** Drops the keys whose value is undefined, so that results compare and serialize cleanly. */
export function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

export function readTraits(msg: Hl7Message, pid: Hl7Segment): PatientTraits {
  let birth: number | undefined;
  let used: number | undefined;
  let untyped: number | undefined;
  for (let r = 1; r <= repetitions(msg, pid, 5); r++) {
    const type = msg.get(`PID-5[${r}].7`) ?? '';
    if (type === 'L') birth ??= r;
    else if (type === 'D') used ??= r;
    else if (type === '') untyped ??= r;
  }
  // A lone name without type is taken as the birth name rather than dropped.
  birth ??= untyped;
  const firstGivenName = birth ? opt(msg.get(`PID-5[${birth}].2`)) : undefined;
  const list = birth ? (msg.get(`PID-5[${birth}].3`) ?? '').split(/\s+/).filter(Boolean) : [];
  let birthPlaceCode: string | undefined;
  for (let r = 1; r <= repetitions(msg, pid, 11); r++) {
    if (msg.get(`PID-11[${r}].7`) === 'BDL') {
      birthPlaceCode = opt(msg.get(`PID-11[${r}].9`));
      break;
    }
  }
  return clean({
    birthName: birth ? opt(msg.get(`PID-5[${birth}].1`)) : undefined,
    usedName: used ? opt(msg.get(`PID-5[${used}].1`)) : undefined,
    givenNames: list.length > 0 ? list : firstGivenName ? [firstGivenName] : [],
    firstGivenName,
    usedGivenName: used ? opt(msg.get(`PID-5[${used}].2`)) : undefined,
    birthDate: opt(msg.get('PID-7.1')),
    sex: opt(msg.get('PID-8')),
    birthPlaceCode,
  });
}

/** An identifier that claims to be an INS: typed INS, or assigned by an INS OID. */
export function isInsIdentifier(i: Identifier): boolean {
  return i.type === 'INS' || isInsOid(i.authority);
}
