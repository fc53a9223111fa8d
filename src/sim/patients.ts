/** The CONSOMMATEUR simulator's patient base, from a JSON file (`pfi sim consommateur --patients`, `patients:`). */
import { readFileSync } from 'node:fs';
import { PfiError } from '../errors.js';
import type { SimPatient } from './consommateur.js';

/** A patients file that cannot be used: `<file>: <what>`. */
export class PatientsFileError extends PfiError {
  constructor(message: string) {
    super('config', message);
  }
}

/** Reads and checks the patients file. */
export function loadPatients(file: string): SimPatient[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PatientsFileError(`${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const list = Array.isArray(json) ? json : (json as { patients?: unknown } | null)?.patients;
  if (!Array.isArray(list))
    throw new PatientsFileError(`${file}: a JSON array of patients (or {"patients": [...]}) expected`);
  return list.map((p, i) => checkPatient(p, `${file}: patient ${i + 1}`));
}

function checkPatient(p: unknown, where: string): SimPatient {
  const o = (p ?? {}) as Record<string, unknown>;
  const str = (v: unknown, name: string, re?: RegExp): string => {
    if (typeof v !== 'string' || v === '' || (re && !re.test(v)))
      throw new PatientsFileError(`${where}: "${name}" missing or invalid`);
    return v;
  };
  const ins = (o.ins ?? {}) as Record<string, unknown>;
  const out: SimPatient = {
    ins: { matricule: str(ins.matricule, 'ins.matricule'), oid: str(ins.oid, 'ins.oid') },
    birthName: str(o.birthName, 'birthName'),
    givenNames: str(o.givenNames, 'givenNames'),
    birthDate: str(o.birthDate, 'birthDate', /^\d{8}$/),
    sex: str(o.sex, 'sex', /^[MFU]$/) as SimPatient['sex'],
    birthPlaceCode: str(o.birthPlaceCode, 'birthPlaceCode', /^[0-9AB]{5}$/),
  };
  if (o.ipp !== undefined) out.ipp = str(o.ipp, 'ipp');
  return out;
}
