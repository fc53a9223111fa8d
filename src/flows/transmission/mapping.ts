import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { XdsCode } from '../../xds/model.js';
import type { Terminology } from '../../xds/terminology.js';

/** What a hospital decides for the transmission flow (mappings/transmission.yaml documents each key). */
export interface TransmissionMapping {
  sourceId: string;
  submissionSetIdRoot: string;
  /** PV1-2 patient class -> SubmissionSet.contentTypeCode. */
  contentTypeCode: Record<string, XdsCode>;
  defaults: {
    contentTypeCode?: XdsCode;
    practiceSettingCode?: XdsCode;
    healthcareFacilityTypeCode?: XdsCode;
  };
}

const OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;

/** Reads and checks a mapping file; a problem names the file and the key. */
export function loadTransmissionMapping(file: string): TransmissionMapping {
  const raw = parse(readFileSync(file, 'utf8')) as Partial<TransmissionMapping> | null;
  const fail = (key: string, what: string) => new Error(`${file}: ${key} ${what}`);
  if (!raw || typeof raw !== 'object') throw fail('(file)', 'is empty');
  for (const key of ['sourceId', 'submissionSetIdRoot'] as const) {
    const v = raw[key] === undefined ? undefined : String(raw[key]);
    if (!v || !OID.test(v)) throw fail(key, 'must be an OID');
  }
  const codes = (where: string, table: Record<string, XdsCode> | undefined) => {
    for (const [k, c] of Object.entries(table ?? {})) {
      if (!c || typeof c !== 'object' || !c.code || !c.scheme || !OID.test(String(c.scheme)))
        throw fail(`${where}.${k}`, 'must be { code, scheme (OID), display }');
      c.code = String(c.code);
      c.scheme = String(c.scheme);
    }
  };
  codes('contentTypeCode', raw.contentTypeCode);
  codes('defaults', raw.defaults as Record<string, XdsCode>);
  return {
    sourceId: String(raw.sourceId),
    submissionSetIdRoot: String(raw.submissionSetIdRoot),
    contentTypeCode: raw.contentTypeCode ?? {},
    defaults: raw.defaults ?? {},
  };
}

/** The DMP value set each mapped code must belong to. */
const VALUE_SETS: Record<string, string> = {
  contentTypeCode: 'J59',
  healthcareFacilityTypeCode: 'J61',
  practiceSettingCode: 'J62',
};

/** Codes of the mapping the DMP would refuse (absent from its value sets J59, J61, J62). */
export function checkMappingCodes(mapping: TransmissionMapping, terminology: Terminology): string[] {
  const problems: string[] = [];
  const check = (where: string, kind: string, c: XdsCode) => {
    const vs = VALUE_SETS[kind]!;
    if (!terminology.inValueSet(vs, c.code, c.scheme))
      problems.push(`${where}: ${c.code} (${c.scheme}) is not in JDV_${vs} (DMP)`);
  };
  for (const [k, c] of Object.entries(mapping.contentTypeCode)) check(`contentTypeCode.${k}`, 'contentTypeCode', c);
  for (const [k, c] of Object.entries(mapping.defaults)) if (c && VALUE_SETS[k]) check(`defaults.${k}`, k, c);
  return problems;
}
