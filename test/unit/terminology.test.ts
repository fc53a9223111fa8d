import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { terminologyCommand } from '../../src/cli/terminology.js';
import { packageRoot } from '../../src/util/paths.js';
import {
  importNos,
  importNosWithReport,
  LOINC_OID,
  serializeTerminology,
  Terminology,
  type TerminologyData,
} from '../../src/xds/terminology.js';

const NOS = join(packageRoot(), '..', 'shared', 'reference', 'nos');
const CDA = join(packageRoot(), '..', 'shared', 'reference', 'ansforge', 'cda-examples');
const COMMITTED = join(packageRoot(), 'mappings', 'terminology.json');
const A03 = '1.2.250.1.213.1.1.4.1';
const IHE_FORMAT = '1.3.6.1.4.1.19376.1.2.3';
const CISIS_FORMAT = '1.2.250.1.213.1.1.4.2.282';

/** templateId roots of the CDA header (before the first component), in document order. */
function headerTemplateIds(file: string): string[] {
  const xml = readFileSync(join(CDA, file), 'utf8');
  const header = xml.slice(0, xml.search(/<component[\s>]/));
  return [...header.matchAll(/<templateId\s[^>]*root="([^"]+)"/g)].map((m) => m[1]!);
}

let data: TerminologyData;
let t: Terminology;
beforeAll(() => {
  data = importNos(NOS);
  t = new Terminology(data);
});

describe('importNos', () => {
  it('imports every value set, code system and concept map of the folder, ignores the rest', () => {
    const { ignored, warnings } = importNosWithReport(NOS);
    expect(Object.keys(data.valueSets)).toEqual([
      'J01',
      'J02',
      'J04',
      'J07',
      'J08',
      'J11',
      'J143',
      'J197',
      'J231',
      'J47',
      'J57',
      'J58',
      'J59',
      'J60',
      'J61',
      'J62',
      'J66',
    ]);
    expect(Object.keys(data.codeSystems)).toEqual(['TRE_A03', 'TRE_A07', 'TRE_R02']);
    expect(Object.keys(data.conceptMaps)).toEqual(['ASS_A11', 'ASS_X04', 'ASS_X16']);
    expect(ignored.map((i) => i.file)).toEqual(['SOURCES.md']);
    expect(data.sources).toHaveLength(23);
    // SA11 and SA62 carry a dateFin in TRE_R02
    expect(warnings.filter((w) => w.includes('retired'))).toHaveLength(2);
    expect(data.codeSystems.TRE_R02!.some((c) => c.code === 'SA11')).toBe(false);
  });

  it('counts what the files hold', () => {
    expect(data.valueSets.J07).toHaveLength(114); // 35 TRE_A05 + 78 LOINC + E1762
    expect(data.valueSets.J57).toHaveLength(11);
    expect(data.valueSets.J66).toHaveLength(81);
    expect(data.codeSystems.TRE_A03).toHaveLength(11);
    expect(data.conceptMaps.ASS_X04).toHaveLength(91 + 37 + 1);
    expect(data.conceptMaps.ASS_X16).toHaveLength(71 + 31 + 1);
    // 47 + 31 structured models, and the XDS-SD templateId with its 5 body kinds merged in one entry
    expect(data.conceptMaps.ASS_A11).toHaveLength(79);
  });

  it('writes systems as OIDs (URL -> OID from the files), keeps the pseudo-systems NOS uses', () => {
    expect(t.find('J66', '11502-2')).toEqual({
      code: '11502-2',
      system: LOINC_OID,
      display: "CR d'examens biologiques",
    });
    expect(t.find('J07', '11502-2')?.system).toBe(LOINC_OID);
    expect(t.find('J07', 'E1762')?.system).toBe('ASTM');
    expect(t.find('J58', 'MASQUE_PS')?.system).toBe('1.2.250.1.213.1.1.4.13');
    const x16 = data.conceptMaps.ASS_X16!.find((e) => e.source.code === '18748-4')!;
    expect(x16.source.system).toBe(LOINC_OID);
    expect(x16.targets).toEqual([{ code: '31', system: A03, display: 'Imagerie médicale', equivalence: 'equivalent' }]);
  });

  it('is deterministic, and the committed mappings/terminology.json is a fresh import', () => {
    expect(serializeTerminology(importNos(NOS))).toBe(serializeTerminology(data));
    expect(readFileSync(COMMITTED, 'utf8')).toBe(serializeTerminology(data));
  });
});

describe('classCodeFor (ASS_X16, then ASS_X04)', () => {
  it('maps LOINC type codes to TRE_A03 classes', () => {
    expect(t.classCodeFor('18748-4')).toEqual({ code: '31', system: A03, display: 'Imagerie médicale' });
    expect(t.classCodeFor('11502-2')).toEqual({ code: '10', system: A03, display: 'Compte rendu' });
    expect(t.classCodeFor('11369-6')?.code).toBe('52'); // vaccination history -> Certificat, déclaration
  });

  it('maps TRE_A05 complementary types, falls back to ASS_X04 for CI-SIS-only types', () => {
    expect(t.classCodeFor('CERT_DECL')).toEqual({ code: '52', system: A03, display: 'Certificat, déclaration' });
    expect(t.classCodeFor('REMB')?.code).toBe('60');
    // in ASS_X04 only (not a DMP type)
    expect(data.conceptMaps.ASS_X16!.some((e) => e.source.code === '10213-7')).toBe(false);
    expect(t.classCodeFor('10213-7')).toEqual({ code: '10', system: A03, display: 'Compte rendu' });
    expect(t.classCodeFor('E1762')).toEqual({
      code: 'urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1',
      system: 'URN',
      display: 'Digital Signature',
    });
  });

  it('honours the source system and returns undefined for unknown codes', () => {
    expect(t.classCodeFor('11502-2', LOINC_OID)?.code).toBe('10');
    expect(t.classCodeFor('11502-2', 'urn:oid:' + LOINC_OID)?.code).toBe('10');
    expect(t.classCodeFor('11502-2', '1.2.250.1.213.1.1.4.12')).toBeUndefined();
    expect(t.classCodeFor('00000-0')).toBeUndefined();
  });

  it('class 95 is mapped by ASS_X16 but missing from the J57 snapshot (known caveat)', () => {
    expect(t.classCodeFor('ATTEST-RESID')).toEqual({ code: '95', system: A03, display: 'Document de gestion' });
    expect(t.inValueSet('J57', '95')).toBe(false);
  });
});

describe('formatCodeFor (ASS_A11)', () => {
  it('N3 CR-CPA example: CI-SIS model templateId -> TRE_A06 formatCode', () => {
    const ids = headerTemplateIds('ANEST-CR-CPA_2022.01.xml');
    expect(ids).toContain('1.2.250.1.213.1.1.1.41');
    expect(t.formatCodeFor(ids)).toEqual({
      code: 'urn:asip:ci-sis:cr-cpa:2020',
      system: CISIS_FORMAT,
      display: expect.any(String),
    });
  });

  it('N3 CR-BIO example: XD-LAB and CR-BIO templateIds -> urn:ihe:lab:xd-lab:2008', () => {
    const ids = headerTemplateIds('BIO-CR-BIO_2024.01_TSH_1.xml');
    expect(ids).toEqual(expect.arrayContaining(['1.3.6.1.4.1.19376.1.3.3', '1.2.250.1.213.1.1.1.55']));
    expect(t.formatCodeFor(ids)?.code).toBe('urn:ihe:lab:xd-lab:2008');
    expect(t.formatCodeFor(ids)?.system).toBe(IHE_FORMAT);
  });

  it(
    'N1 CR-IMG example with a PDF body -> urn:ihe:iti:xds-sd:pdf:2008, ' + 'despite its structured-model templateId',
    () => {
      const ids = headerTemplateIds('IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml');
      expect(ids).toEqual(expect.arrayContaining(['1.3.6.1.4.1.19376.1.2.20', '1.2.250.1.213.1.1.1.45']));
      const pdf = {
        code: 'urn:ihe:iti:xds-sd:pdf:2008',
        system: IHE_FORMAT,
        display: 'Document à corps non structuré en Pdf/A-1',
      };
      expect(t.formatCodeFor(ids, { pdfBody: true })).toEqual(pdf);
      expect(t.formatCodeFor(ids, { mediaType: 'application/pdf' })).toEqual(pdf);
      expect(t.formatCodeFor(ids, { mediaType: 'text/plain' })?.code).toBe('urn:ihe:iti:xds-sd:text:2008');
      expect(t.formatCodeFor(ids, { mediaType: 'image/jpeg' })?.code).toBe('urn:ihe:iti-fr:xds-sd:jpeg:2010');
      // an N1 whose body kind is not given is ambiguous
      expect(t.formatCodeFor(ids)).toBeUndefined();
      // without the XDS-SD templateId, the structured model would give its own formatCode
      expect(t.formatCodeFor(['1.2.250.1.213.1.1.1.45'])?.code).toBe(
        'urn:ihe:rad:CDA:ImagingReportStructuredHeadings:2013',
      );
    },
  );

  it('TLM-CR N1 example, and unknown templateIds', () => {
    expect(t.formatCodeFor(headerTemplateIds('TLM-CR_2022.01.xml'), { pdfBody: true })?.code).toBe(
      'urn:ihe:iti:xds-sd:pdf:2008',
    );
    expect(t.formatCodeFor(['2.16.840.1.113883.2.8.2.1', '1.2.250.1.213.1.1.1.1'])).toBeUndefined();
  });
});

describe('value sets', () => {
  it('J57 classCode', () => {
    expect(t.inValueSet('J57', '10')).toBe(true);
    expect(t.inValueSet('J57', '10', A03)).toBe(true);
    expect(t.inValueSet('J57', '10', LOINC_OID)).toBe(false);
    expect(t.inValueSet('J57', '99')).toBe(false);
    expect(t.display('J57', '11')).toBe('Synthèse');
  });

  it('J07 typeCode (CI-SIS) and J66 (DMP)', () => {
    expect(t.inValueSet('J07', '18748-4', LOINC_OID)).toBe(true);
    expect(t.inValueSet('JDV_J07_XdsTypeCode_CISIS', '11502-2')).toBe(true);
    expect(t.display('J07', '18748-4')).toBe("CR d'imagerie médicale");
    expect(t.inValueSet('J07', 'CERT_DECL', '1.2.250.1.213.1.1.4.12')).toBe(true);
    expect(t.inValueSet('J07', '12345-6')).toBe(false);
    expect(t.inValueSet('J66', '18748-4')).toBe(true);
    expect(t.inValueSet('J99', '18748-4')).toBe(false);
  });

  it('J58 confidentiality codes use the long DMP form', () => {
    expect(t.inValueSet('J58', 'INVISIBLE_REPRESENTANTS_LEGAUX')).toBe(true);
    expect(t.inValueSet('J58', 'INVISIBLE_REP_LEGAUX')).toBe(false);
    expect(t.inValueSet('J58', 'N', '2.16.840.1.113883.5.25')).toBe(true);
  });
});

describe('pfi terminology', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pfi-term-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('import writes the file and reports what it ignored; check answers from it', async () => {
    const src = join(dir, 'nos');
    mkdirSync(src);
    for (const f of [
      'JDV_J07_XdsTypeCode_CISIS.xml',
      'ConceptMap-ASS-X16-CorrespondanceType-Classe-DMP.json',
      'CodeSystem-TRE-A03-ClasseDocument.json',
    ]) {
      copyFileSync(join(NOS, f), join(src, f));
    }
    writeFileSync(join(src, 'notes.txt'), 'x');
    writeFileSync(join(src, 'other.json'), '{"resourceType":"Patient"}');
    const out = join(dir, 'out', 'terminology.json');
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await terminologyCommand(['import', src, '--out', out])).toBe(0);
      const printed = write.mock.calls.map((c) => String(c[0])).join('');
      expect(printed).toContain('files ignored: 2');
      expect(printed).toContain('other.json: unsupported FHIR resourceType Patient');
      const loaded = Terminology.load(out);
      expect(Object.keys(loaded.data.valueSets)).toEqual(['J07']);
      expect(loaded.classCodeFor('18748-4')).toEqual({ code: '31', system: A03, display: 'Imagerie médicale' });
      expect(await terminologyCommand(['check', '18748-4', '--value-set', 'J07', '--file', out])).toBe(0);
      expect(await terminologyCommand(['check', '95', '--value-set', 'J57'])).toBe(1);
      expect(await terminologyCommand(['class-code', '11502-2'])).toBe(0);
      expect(
        await terminologyCommand(['format-code', '1.3.6.1.4.1.19376.1.2.20', '--media-type', 'application/pdf']),
      ).toBe(0);
      expect(write.mock.calls.map((c) => String(c[0])).join('')).toContain('urn:ihe:iti:xds-sd:pdf:2008');
    } finally {
      write.mockRestore();
    }
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await terminologyCommand(['bogus'])).toBe(2);
      expect(await terminologyCommand(['import'])).toBe(2);
    } finally {
      err.mockRestore();
    }
  });
});
