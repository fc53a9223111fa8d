import type { Redis } from 'ioredis';
import { RedisKeys } from '../redis/keys.js';
import { newId } from '../util/id.js';
import { dmpPermissions, type Identifier, type PatientUpdate } from './pam.js';

/** A patient as the hospital's patient administration (GAM) last described it. */
export interface Patient {
  id: string;
  ids: Identifier[];
  ins?: { matricule: string; oid: string; valid: boolean };
  traits: PatientUpdate['traits'];
  reliability?: string;
  attributes: string[];
  /** PID-32 = QUAL with a valid INS: the only state in which the DMP may be fed. */
  qualified: boolean;
  consent?: PatientUpdate['consent'];
  stays: Stay[];
  /** Event time of the newest identity / consent applied (HL7 TS, for the out-of-order rule). */
  identityAt?: string;
  consentAt?: string;
  /** Set on an identity merged into another one (A40). */
  mergedInto?: string;
}

export interface Stay {
  visit: Identifier;
  patientClass?: string;
  admitTime?: string;
  dischargeTime?: string;
  consent?: PatientUpdate['consent'];
  at: string;
}

export interface HistoryEntry {
  at: string;
  event: string;
  journalId?: string;
  note: string;
}

const key = (id: Pick<Identifier, 'id' | 'authority'>) => `${id.authority}|${id.id}`;

/**
 * Identities and DMP consent fed by the PAM ADT flow, in Redis. Updates are applied by event time
 * (EVN-6, else EVN-2), so a late message never overwrites a newer state. Within a process the
 * updates run one after the other (read-modify-write steps); the PAM channel also processes in
 * order. Several worker processes on one PAM channel are not supported yet.
 */
export class IdentityStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys = new RedisKeys(),
  ) {}

  /** The patient an identifier names, following merges. */
  async find(identifier: Pick<Identifier, 'id' | 'authority'>): Promise<Patient | undefined> {
    const pid = await this.redis.get(this.keys.identity('x', key(identifier)));
    return pid ? this.get(pid) : undefined;
  }

  async get(pid: string, depth = 0): Promise<Patient | undefined> {
    const raw = await this.redis.get(this.keys.identity('p', pid));
    if (!raw) return undefined;
    const p = JSON.parse(raw) as Patient;
    if (p.mergedInto && depth < 10) return (await this.get(p.mergedInto, depth + 1)) ?? p;
    return p;
  }

  /**
   * May a document about this patient go to the DMP? Only with a qualified INS (PID-32 = QUAL and a
   * valid key) and no opposition to feeding (ZFA-9 = IO); an unknown patient is not qualified.
   */
  async dmpGate(
    ids: Pick<Identifier, 'id' | 'authority'>[],
  ): Promise<{ allowed: boolean; reason?: string; patient?: Patient }> {
    let patient: Patient | undefined;
    for (const id of ids) if ((patient = await this.find(id))) break;
    if (!patient) return { allowed: false, reason: 'patient unknown to the identity store (no PAM message yet)' };
    if (!patient.qualified)
      return { allowed: false, reason: `INS not qualified (PID-32 ${patient.reliability ?? 'absent'})`, patient };
    if (!dmpPermissions(patient.consent).feedingAllowed)
      return { allowed: false, reason: 'patient informed and opposed to DMP feeding (ZFA-9 = IO)', patient };
    return { allowed: true, patient };
  }

  async history(pid: string): Promise<HistoryEntry[]> {
    return (await this.redis.lrange(this.keys.identity('h', pid), 0, -1)).map((e) => JSON.parse(e) as HistoryEntry);
  }

  /** Updates of this process, one after the other (see the class comment). */
  private last: Promise<unknown> = Promise.resolve();

  /** Applies one ADT update; returns the patient as it now stands. */
  apply(u: PatientUpdate, journalId?: string): Promise<Patient> {
    const run = this.last.then(() => this.applyNow(u, journalId));
    this.last = run.catch(() => undefined);
    return run;
  }

  private async applyNow(u: PatientUpdate, journalId?: string): Promise<Patient> {
    const at = normalize(u.eventTime);
    let patient = await this.resolve(u.ids);
    const notes: string[] = [];
    if (!patient) {
      patient = { id: newId(), ids: [], traits: { givenNames: [] }, attributes: [], qualified: false, stays: [] };
      notes.push('created');
    }

    // A40 merge / A47 identifier change: the identity the old identifiers named is folded into this one.
    if (u.previousIds?.length) {
      const old = await this.resolve(u.previousIds);
      if (old && old.id !== patient.id) {
        patient.stays.push(...old.stays.filter((s) => !patient!.stays.some((t) => key(t.visit) === key(s.visit))));
        patient.ids = union(patient.ids, old.ids);
        old.mergedInto = patient.id;
        await this.save(old);
        notes.push(`merged ${old.id} (${u.previousIds.map(key).join(', ')})`);
      } else {
        notes.push(`previous identifiers ${u.previousIds.map(key).join(', ')} now name this patient`);
      }
      patient.ids = union(patient.ids, u.previousIds);
    }
    patient.ids = union(patient.ids, u.ids);

    if (!patient.identityAt || at >= patient.identityAt) {
      patient.identityAt = at;
      patient.traits = u.traits;
      patient.reliability = u.reliability;
      patient.attributes = u.attributes;
      patient.ins = u.ins && { matricule: u.ins.matricule, oid: u.ins.oid, valid: u.ins.valid };
      // Never qualified without a valid INS, whatever PID-32 says.
      patient.qualified = u.reliability === 'QUAL' && !!u.ins?.valid;
      notes.push(`identity ${u.reliability ?? '(no status)'}`);
    } else {
      notes.push(`identity older than the one kept (${patient.identityAt}): ignored`);
    }

    if (u.consent && (!patient.consentAt || at >= patient.consentAt)) {
      patient.consentAt = at;
      patient.consent = u.consent;
      notes.push('consent');
    }

    if (u.stay) {
      const i = patient.stays.findIndex((s) => key(s.visit) === key(u.stay!.visit));
      const current = i >= 0 ? patient.stays[i]! : undefined;
      if (!current || at >= current.at) {
        const stay: Stay = {
          ...current,
          ...definedOnly(u.stay),
          visit: u.stay.visit,
          consent: u.consent ?? current?.consent,
          at,
        };
        if (i >= 0) patient.stays[i] = stay;
        else patient.stays.push(stay);
        notes.push(`stay ${key(u.stay.visit)}`);
      }
    }

    const entry: HistoryEntry = { at, event: u.event, journalId, note: notes.join('; ') };
    await this.save(patient, entry);
    return patient;
  }

  private async resolve(ids: Identifier[]): Promise<Patient | undefined> {
    for (const id of ids) {
      const p = await this.find(id);
      if (p) return p;
    }
    return undefined;
  }

  /** The patient, its identifiers' index and (with `entry`) its history, in one transaction. */
  private async save(p: Patient, entry?: HistoryEntry): Promise<void> {
    const tx = this.redis.multi().set(this.keys.identity('p', p.id), JSON.stringify(p));
    if (entry) tx.rpush(this.keys.identity('h', p.id), JSON.stringify(entry));
    // Every identifier points at the identity that now holds it (merged ones included).
    if (!p.mergedInto) for (const id of p.ids) tx.set(this.keys.identity('x', key(id)), p.id);
    await tx.exec();
  }
}

function union(a: Identifier[], b: Identifier[]): Identifier[] {
  const out = [...a];
  for (const id of b) if (!out.some((x) => key(x) === key(id))) out.push(id);
  return out;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as Partial<T>;
}

/** HL7 TS to a sortable string: digits padded to YYYYMMDDHHMMSS, offset dropped (one hospital, one zone). */
export function normalize(ts: string): string {
  const digits = (ts.match(/^\d+/)?.[0] ?? '').slice(0, 14);
  return digits.padEnd(14, '0');
}
