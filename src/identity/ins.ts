/**
 * INS (Identité Nationale de Santé) checks, wherever an INS enters the engine: the OID must be one
 * of the four of the INS referential, the matricule 15 characters (13 + a 2-digit key), and the key
 * right for the NIR OIDs: 97 - (the 13 first characters mod 97), Corsica's 2A and 2B counting as 19
 * and 18. Months are not checked: pseudo-months exist.
 */
export const INS_OIDS = {
  '1.2.250.1.213.1.4.8': 'NIR',
  '1.2.250.1.213.1.4.9': 'NIA',
  '1.2.250.1.213.1.4.10': 'NIR-TEST',
  '1.2.250.1.213.1.4.11': 'NIR-DEMO',
} as const;

export type InsKind = (typeof INS_OIDS)[keyof typeof INS_OIDS];

export type InsCheck = { ok: true; kind: InsKind } | { ok: false; reason: string };

export function isInsOid(oid: string): oid is keyof typeof INS_OIDS {
  return oid in INS_OIDS;
}

export function checkIns(matricule: string, oid: string): InsCheck {
  if (!isInsOid(oid))
    return { ok: false, reason: `OID ${oid || '(none)'} is not an INS OID (NIR, NIA, NIR test, NIR demo)` };
  const kind = INS_OIDS[oid];
  if (!/^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$/.test(matricule)) {
    return {
      ok: false,
      reason: `INS matricule "${matricule}" must be 15 characters: 13 (digits, 2A/2B for Corsica) and a 2-digit key`,
    };
  }
  if (kind === 'NIA') return { ok: true, kind };
  const body = matricule.slice(0, 13).replace('2A', '19').replace('2B', '18');
  const key = 97 - (Number(body) % 97);
  const expected = String(key).padStart(2, '0');
  if (key !== Number(matricule.slice(13)))
    return {
      ok: false,
      reason: `INS matricule ${matricule}: key ${matricule.slice(13)} is wrong (expected ${expected})`,
    };
  return { ok: true, kind };
}
