import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it, vi } from 'vitest';
import { CdaError, readCdaHeader, type CdaHeader } from '../../src/cda/index.js';
import { packageRoot } from '../../src/util/paths.js';

const EXAMPLES = join(packageRoot(), '..', 'shared', 'reference', 'ansforge', 'cda-examples');
const example = (name: string) => readFileSync(join(EXAMPLES, name));

function refusal(input: Buffer | string): CdaError {
  try {
    readCdaHeader(input);
  } catch (e) {
    expect(e).toBeInstanceOf(CdaError);
    return e as CdaError;
  }
  throw new Error('readCdaHeader accepted the input');
}

const MINIMAL = (root = 'ClinicalDocument', ns = ' xmlns="urn:hl7-org:v3"', prefix = '') =>
  [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<${prefix}${root}${ns}>`,
    `  <${prefix}id root="1.2.3" extension="X1"/>`,
    `  <${prefix}code code="11488-4" codeSystem="2.16.840.1.113883.6.1"/>`,
    `  <${prefix}title>Titre &amp; sous-titre</${prefix}title>`,
    `  <${prefix}recordTarget><${prefix}patientRole>` +
      `<${prefix}id root="1.2.250.1.213.1.4.8" extension="123456789012345"/>` +
      `</${prefix}patientRole></${prefix}recordTarget>`,
    `  <${prefix}component><${prefix}structuredBody><${prefix}component><${prefix}section/>` +
      `</${prefix}component></${prefix}structuredBody></${prefix}component>`,
    `</${prefix}${root}>`,
  ].join('\n');

describe('readCdaHeader on the 47 ANS example documents', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.xml'));
  it('finds them all', () => expect(files).toHaveLength(47));
  it.each(files)('%s', (file) => {
    const h = readCdaHeader(example(file));
    expect(h.id.root).toMatch(/^\d+(\.\d+)+$/);
    expect(h.code.code).toBeTruthy();
    expect(h.templateIds.length).toBeGreaterThan(0);
    expect(h.recordTarget.ids.length).toBeGreaterThan(0);
    expect(h.authors.length).toBeGreaterThan(0);
    expect(h.authors[0]!.person?.id?.root ?? h.authors[0]!.organization?.id?.root).toBeTruthy();
    expect(['structuredBody', 'nonXMLBody']).toContain(h.body.kind);
  });
});

describe('readCdaHeader values', () => {
  it('reads an N1 imaging report (IMG-CR-IMG, PDF in nonXMLBody)', () => {
    const h = readCdaHeader(example('IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml'));
    expect(h.id).toEqual({ root: '1.2.250.1.213.1.1.1.45.2024.2.1' });
    expect(h.setId).toEqual({ root: '1.2.250.1.213.1.1.1.45.2024.2' });
    expect(h.versionNumber).toBe(2);
    expect(h.code).toEqual({
      code: '18748-4',
      displayName: 'CR d’imagerie médicale',
      codeSystem: '2.16.840.1.113883.6.1',
      codeSystemName: 'LOINC',
    });
    expect(h.title).toBe('CR d’imagerie médicale - Scanner Tête + Cou + Thorax avec injection');
    expect(h.effectiveTime).toBe('20210108111700+0100');
    expect(h.confidentialityCode?.code).toBe('N');
    expect(h.languageCode).toBe('fr-FR');
    // The commented-out templateId (IMG-CR-IMG 2024.01) must not be read.
    expect(h.templateIds).toEqual([
      { root: '2.16.840.1.113883.2.8.2.1' },
      { root: '1.2.250.1.213.1.1.1.1' },
      { root: '1.3.6.1.4.1.19376.1.2.20' },
    ]);
    expect(h.recordTarget).toEqual({
      ids: [
        { root: '1.2.250.1.213.1.4.10', extension: '279035121518989' },
        { root: '1.2.3.4.567.8.9.10', extension: '1234567890121' },
      ],
      ins: { matricule: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
      birthName: 'PAT-TROIS',
      usedName: 'PAT-TROIS',
      givenNames: ['DOMINIQUE MARIE-LOUISE'],
      firstGivenName: 'DOMINIQUE',
      usedGivenName: 'DOMINIQUE',
      sex: 'F',
      birthDate: '19790328',
      birthPlaceCode: '51215',
    } satisfies CdaHeader['recordTarget']);
    expect(h.authors).toEqual([
      {
        time: '20210108111700+0100',
        person: {
          id: { root: '1.2.250.1.71.4.2.1', extension: '801234560801' },
          family: 'BIDEAULT',
          given: ['Jacques'],
          functionCode: {
            code: 'ATTPHYS',
            displayName: 'Référent - Responsable du patient dans la structure de soins',
            codeSystem: '2.16.840.1.113883.5.88',
          },
          specialty: {
            code: 'G15_10/SM44',
            displayName: 'Médecin - Radio-diagnostic (SM)',
            codeSystem: '1.2.250.1.213.1.1.4.5',
          },
        },
        organization: {
          id: { root: '1.2.250.1.71.4.2.2', extension: '1750803447' },
          name: 'Centre de radiologie Ambroise',
          standardIndustryClassCode: {
            code: 'AMBULATOIRE',
            displayName: 'Ambulatoire',
            codeSystem: '1.2.250.1.213.1.1.4.9',
          },
        },
      },
    ]);
    expect(h.legalAuthenticator).toEqual({
      time: '20210108111700+0100',
      id: { root: '1.2.250.1.71.4.2.1', extension: '801234560801' },
      family: 'BIDEAULT',
      given: ['Jacques'],
    });
    expect(h.custodian).toEqual({
      id: { root: '1.2.250.1.71.4.2.2', extension: '1750803447' },
      name: 'Centre de radiologie Ambroise',
    });
    expect(h.serviceEvents).toHaveLength(4);
    expect(h.serviceEvents[0]).toMatchObject({
      code: { code: '24727-0', codeSystem: '2.16.840.1.113883.6.1' },
      start: '20210108102500+0100',
      end: '20210108111700+0100',
      performerOrganization: {
        id: { root: '1.2.250.1.71.4.2.2', extension: '1750803447' },
        standardIndustryClassCode: { code: 'AMBULATOIRE' },
      },
    });
    expect(h.encounter).toEqual({
      code: { code: 'AMB', displayName: 'Ambulatoire (hors établissement)', codeSystem: '2.16.840.1.113883.5.4' },
      start: '20210108102500+0100',
      end: '20210108111700+0100',
      healthCareFacilityCode: { code: 'SA08', displayName: 'Cabinet de groupe', codeSystem: '1.2.250.1.71.4.2.4' },
      locationOrganization: {
        id: { root: '1.2.250.1.71.4.2.2', extension: '1750803447' },
        name: 'Centre de radiologie Ambroise',
      },
    });
    expect(h.body).toEqual({ kind: 'nonXMLBody', mediaType: 'application/pdf', representation: 'B64' });
    expect(h.selfPresenting).toBeUndefined();
  });

  it('reads birth name and used name when they differ (SDM-MR, N3)', () => {
    const h = readCdaHeader(example('SDM-MR_2024.01_patiente-enceinte.xml'));
    expect(h.recordTarget).toMatchObject({
      ins: { matricule: '277076322082910', oid: '1.2.250.1.213.1.4.10' },
      birthName: 'NESSI',
      usedName: 'DECOURCY',
      givenNames: ['Ruth Isabelle'],
      firstGivenName: 'Ruth',
      sex: 'F',
      birthDate: '19770714',
      birthPlaceCode: '75115',
    });
    expect(h.authors[0]!.person?.id).toEqual({ root: '1.2.250.1.71.4.2.1', extension: '801234567897' });
    expect(h.custodian).toEqual({
      id: { root: '1.2.250.1.71.4.2.2', extension: '1750803454' },
      name: 'GHU APHP NUP SITE ROBERT DEBRE',
    });
    expect(h.serviceEvents[0]).toMatchObject({ start: '20240112111700+0100' });
    expect(h.encounter?.healthCareFacilityCode?.code).toBe('SA01');
    expect(h.body).toEqual({ kind: 'structuredBody' });
  });

  it('reads a self-presenting document (CDA with c: prefix inside an XSLT stylesheet)', () => {
    const h = readCdaHeader(example('BIO-CR-BIO_2021.01_Auto-Presentable_avec-image.xml'));
    expect(h.selfPresenting).toBe(true);
    expect(h.id).toEqual({ root: '1.2.250.1.213.1.1.1.55.2021.2.1' });
    expect(h.code.code).toBe('11502-2');
    expect(h.recordTarget.ins).toEqual({ matricule: '279035121518989', oid: '1.2.250.1.213.1.4.10' });
    expect(h.authors[0]!.person).toMatchObject({
      id: { root: '1.2.250.1.71.4.2.1', extension: '801234534765' },
      family: 'CAMPARINI',
    });
    expect(h.custodian?.name).toBe('Laboratoire des charmes');
    expect(h.body.kind).toBe('structuredBody');
  });

  it('gives the same header from a string, a Buffer and a Buffer with a BOM', () => {
    const buf = example('VAC-NOTE_2023.01.xml');
    const h = readCdaHeader(buf);
    expect(readCdaHeader(buf.toString('utf8'))).toEqual(h);
    expect(readCdaHeader(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), buf]))).toEqual(h);
  });

  it('resolves any prefix bound to urn:hl7-org:v3 and decodes entities', () => {
    const h = readCdaHeader(MINIMAL('ClinicalDocument', ' xmlns:v3="urn:hl7-org:v3"', 'v3:'));
    expect(h.id).toEqual({ root: '1.2.3', extension: 'X1' });
    expect(h.title).toBe('Titre & sous-titre');
    expect(h.recordTarget.ins).toEqual({ matricule: '123456789012345', oid: '1.2.250.1.213.1.4.8' });
    expect(h.authors).toEqual([]);
  });

  it('decodes an ISO-8859-1 document', () => {
    const xml = MINIMAL().replace('UTF-8', 'ISO-8859-1').replace('Titre', 'Été');
    const h = readCdaHeader(Buffer.from(xml, 'latin1'));
    expect(h.title).toBe('Été & sous-titre');
  });

  it('reads a 1 MiB+ N3 document by parsing its header only (the body is only scanned)', () => {
    const buf = example('DLU-EHPAD-DLU_2022.01.xml');
    expect(buf.length).toBeGreaterThan(1 << 20);
    // What the XML library gets is the header (15 KiB here), never the megabytes of body: that is what
    // makes the read fast. How fast is measured by `npm run bench` (scenario parsers), not here.
    const validated = vi.spyOn(XMLValidator, 'validate');
    const parsed = vi.spyOn(XMLParser.prototype, 'parse');
    try {
      expect(readCdaHeader(buf).id.root).toBeTruthy();
      expect(validated).toHaveBeenCalledTimes(1);
      expect(parsed).toHaveBeenCalledTimes(1);
      for (const [xml] of [...validated.mock.calls, ...parsed.mock.calls]) {
        expect(String(xml).length).toBeLessThan(buf.length / 20);
      }
    } finally {
      validated.mockRestore();
      parsed.mockRestore();
    }
  });
});

describe('readCdaHeader refusals', () => {
  it('refuses text that is not XML', () => {
    const e = refusal(Buffer.from('Document medcial au format CDA niveau 1'));
    expect(e.kind).toBe('not-xml');
    expect(e.message).toMatch(/not a CDA document/i);
    expect(refusal('').kind).toBe('not-xml');
    expect(refusal(Buffer.from([0x25, 0x50, 0x44, 0x46, 0xff, 0xfe, 0x00])).kind).toBe('not-xml');
  });

  it('refuses XML that is not well-formed, with a line number', () => {
    const e = refusal('<ClinicalDocument xmlns="urn:hl7-org:v3">\n<id root="1"/>\n<code></title>\n</ClinicalDocument>');
    expect(e.kind).toBe('not-xml');
    expect(e.message).toMatch(/line 3/);
    expect(refusal(MINIMAL().replace('root="1.2.3"', 'root=1.2.3')).kind).toBe('not-xml');
    expect(refusal(MINIMAL().replace('<title>', '<title a="1" a="2">')).kind).toBe('not-xml');
  });

  it('refuses a truncated document (the body is checked too)', () => {
    const full = example('DLU-EHPAD-DLU_2022.01.xml');
    const e = refusal(full.subarray(0, Math.floor(full.length * 0.8)));
    expect(e.kind).toBe('not-xml');
    expect(e.message).toMatch(/truncated|not well-formed/);
    const broken = full.toString('utf8').replace(/<\/section>/, '</sectio>');
    expect(refusal(broken).kind).toBe('not-xml');
  });

  it('refuses XML that is not a CDA', () => {
    expect(refusal('<?xml version="1.0"?><foo xmlns="urn:x"><bar/></foo>').kind).toBe('not-cda');
    const noNs = refusal(MINIMAL('ClinicalDocument', ''));
    expect(noNs.kind).toBe('not-cda');
    expect(noNs.message).toMatch(/urn:hl7-org:v3/);
    expect(refusal(MINIMAL('ClinicalDocument', ' xmlns="urn:hl7-org:v2"')).kind).toBe('not-cda');
    expect(refusal('<!DOCTYPE x [<!ENTITY a "b">]><ClinicalDocument xmlns="urn:hl7-org:v3"/>').kind).toBe('not-cda');
  });

  it('refuses a CDA without id, code or body', () => {
    const noId = refusal(MINIMAL().replace('<id root="1.2.3" extension="X1"/>', '<id nullFlavor="NI"/>'));
    expect(noId.kind).toBe('missing');
    expect(noId.message).toMatch(/id/);
    expect(refusal(MINIMAL().replace(/<code [^>]*\/>/, '')).kind).toBe('missing');
    expect(refusal(MINIMAL().replace(/<component><structuredBody>.*<\/structuredBody><\/component>/, '')).kind).toBe(
      'missing',
    );
  });
});
