import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCdaHeader } from '../../src/cda/index.js';
import { buildN1, N1Error, N1_TEMPLATE_IDS, type N1Input } from '../../src/cda/n1.js';
import { packageRoot } from '../../src/util/paths.js';

const XSD = join(packageRoot(), '..', 'shared', 'reference', 'ansforge', 'cda-xsd', 'cda', 'CDA_extended.xsd');
const tmp = mkdtempSync(join(tmpdir(), 'cda-n1-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A minimal valid one-page PDF (with a binary comment line, so that non-ASCII bytes are exercised). */
function minimalPdf(): Buffer {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << >> >>',
    '<< /Length 0 >>\nstream\n\nendstream',
  ];
  const head = Buffer.concat([Buffer.from('%PDF-1.4\n%'), Buffer.from([0xe2, 0xe3, 0xcf, 0xd3]), Buffer.from('\n')]);
  const parts: Buffer[] = [head];
  const offsets: number[] = [];
  let pos = head.length;
  objects.forEach((o, i) => {
    const b = Buffer.from(`${i + 1} 0 obj\n${o}\nendobj\n`, 'latin1');
    offsets.push(pos);
    parts.push(b);
    pos += b.length;
  });
  const xref = [
    'xref',
    `0 ${objects.length + 1}`,
    '0000000000 65535 f ',
    ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n `),
  ].join('\n');
  parts.push(
    Buffer.from(
      `${xref}\ntrailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${pos}\n%%EOF\n`,
      'latin1',
    ),
  );
  return Buffer.concat(parts);
}

const PDF = minimalPdf();

function input(): N1Input {
  return {
    document: {
      id: { root: '1.2.250.1.999.1.2.3', extension: 'DOC-0001' },
      setId: { root: '1.2.250.1.999.1.2.4', extension: 'SET-0001' },
      versionNumber: 2,
      code: { code: '11490-0', codeSystem: '2.16.840.1.113883.6.1', displayName: 'Lettre de sortie' },
      title: 'Lettre de sortie du service de cardiologie',
      effectiveTime: '20240315143000+0100',
      confidentialityCode: 'N',
    },
    patient: {
      ins: { matricule: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
      localIds: [{ root: '1.2.250.1.999.1.1', extension: 'IPP123456' }],
      birthName: 'PAT-TROIS',
      usedName: 'MARTIN',
      givenNames: ['DOMINIQUE', 'MARIE-LOUISE'],
      sex: 'F',
      birthDate: '19790328',
      birthPlaceCode: '51215',
    },
    author: {
      time: '20240315142500+0100',
      id: { root: '1.2.250.1.71.4.2.1', extension: '810001234567' },
      family: 'BIDEAULT',
      given: 'Jacques',
      specialty: {
        code: 'G15_10/SM04',
        codeSystem: '1.2.250.1.213.1.1.4.5',
        displayName: 'Médecin - Cardiologie et maladies vasculaires (SM)',
      },
      organization: { id: { root: '1.2.250.1.71.4.2.2', extension: '1750803447' }, name: 'Centre hospitalier de Test' },
    },
    custodian: { id: { root: '1.2.250.1.71.4.2.2', extension: '1750803447' }, name: 'Centre hospitalier de Test' },
    serviceEvent: {
      start: '20240310080000+0100',
      end: '20240315120000+0100',
      performerOrganization: {
        id: { root: '1.2.250.1.71.4.2.2', extension: '1750803447' },
        name: 'Centre hospitalier de Test',
        practiceSetting: {
          code: 'ETABLISSEMENT',
          codeSystem: '1.2.250.1.213.1.1.4.9',
          displayName: 'Etablissement de santé',
        },
      },
    },
    encounter: {
      start: '20240310080000+0100',
      end: '20240315120000+0100',
      healthCareFacility: {
        code: 'SA01',
        codeSystem: '1.2.250.1.71.4.2.4',
        displayName: 'Etablissement Public de santé',
      },
    },
    pdf: PDF,
  };
}

let seq = 0;
function xmllint(doc: Buffer): { status: number | null; stderr: string } {
  const file = join(tmp, `n1-${++seq}.xml`);
  writeFileSync(file, doc);
  const r = spawnSync('xmllint', ['--noout', '--schema', XSD, file], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, stderr: r.stderr };
}

function refusal(mutate: (i: N1Input) => void): N1Error {
  const i = input();
  mutate(i);
  try {
    buildN1(i);
  } catch (e) {
    expect(e).toBeInstanceOf(N1Error);
    return e as N1Error;
  }
  throw new Error('buildN1 accepted the input');
}

function bodyBase64(doc: Buffer): string {
  const m = /<text mediaType="application\/pdf" representation="B64">([^<]*)<\/text>/.exec(doc.toString('utf8'));
  expect(m).not.toBeNull();
  return m![1]!;
}

describe('buildN1', () => {
  it('produces a document valid against CDA_extended.xsd (xmllint)', () => {
    const r = xmllint(buildN1(input()));
    expect(r.stderr).toContain('validates');
    expect(r.status).toBe(0);
  });

  it('is also valid with only the required inputs', () => {
    const i = input();
    delete i.document.setId;
    delete i.document.versionNumber;
    delete i.document.confidentialityCode;
    delete i.patient.ins;
    delete i.patient.usedName;
    delete i.patient.birthPlaceCode;
    delete i.author.family;
    delete i.author.given;
    delete i.author.specialty;
    delete i.serviceEvent;
    delete i.encounter;
    const doc = buildN1(i);
    expect(xmllint(doc).status).toBe(0);
    const h = readCdaHeader(doc);
    expect(h.setId?.root).toMatch(/^2\.25\.\d+$/);
    expect(h.versionNumber).toBe(1);
    expect(h.confidentialityCode?.code).toBe('N');
    expect(h.recordTarget.ins).toBeUndefined();
    expect(h.recordTarget.ids).toEqual([{ root: '1.2.250.1.999.1.1', extension: 'IPP123456' }]);
    expect(h.serviceEvents).toEqual([]);
    expect(h.encounter).toBeUndefined();
    expect(h.body).toEqual({ kind: 'nonXMLBody', mediaType: 'application/pdf', representation: 'B64' });
  });

  it('reads back through readCdaHeader with every input value', () => {
    const i = input();
    const h = readCdaHeader(buildN1(i));
    expect(h.id).toEqual(i.document.id);
    expect(h.setId).toEqual(i.document.setId);
    expect(h.versionNumber).toBe(2);
    expect(h.code).toEqual(i.document.code);
    expect(h.title).toBe(i.document.title);
    expect(h.effectiveTime).toBe(i.document.effectiveTime);
    expect(h.confidentialityCode).toEqual({ code: 'N', displayName: 'Normal', codeSystem: '2.16.840.1.113883.5.25' });
    expect(h.languageCode).toBe('fr-FR');
    expect(h.templateIds).toEqual([
      { root: '2.16.840.1.113883.2.8.2.1' },
      { root: '1.2.250.1.213.1.1.1.1' },
      { root: '1.3.6.1.4.1.19376.1.2.20' },
    ]);
    expect(h.templateIds.map((t) => t.root)).toEqual(
      expect.arrayContaining([N1_TEMPLATE_IDS.ciSis, N1_TEMPLATE_IDS.xdsSd]),
    );

    const rt = h.recordTarget;
    expect(rt.ins).toEqual(i.patient.ins);
    expect(rt.ids).toEqual([{ root: '1.2.250.1.213.1.4.10', extension: '279035121518989' }, ...i.patient.localIds!]);
    expect(rt.birthName).toBe('PAT-TROIS');
    expect(rt.usedName).toBe('MARTIN');
    // CI-SIS: one unqualified given with the space-separated list, plus given BR = first given name.
    expect(rt.givenNames).toEqual(['DOMINIQUE MARIE-LOUISE']);
    expect(rt.givenNames.join(' ').split(' ')).toEqual(i.patient.givenNames);
    expect(rt.firstGivenName).toBe('DOMINIQUE');
    expect(rt.sex).toBe('F');
    expect(rt.birthDate).toBe('19790328');
    expect(rt.birthPlaceCode).toBe('51215');

    expect(h.authors).toEqual([
      {
        time: i.author.time,
        person: { id: i.author.id, family: 'BIDEAULT', given: ['Jacques'], specialty: i.author.specialty },
        organization: i.author.organization,
      },
    ]);
    // legalAuthenticator defaults to the author.
    expect(h.legalAuthenticator).toEqual({
      time: i.author.time,
      id: i.author.id,
      family: 'BIDEAULT',
      given: ['Jacques'],
    });
    expect(h.custodian).toEqual(i.custodian);
    expect(h.serviceEvents).toEqual([
      {
        start: i.serviceEvent!.start,
        end: i.serviceEvent!.end,
        performerOrganization: {
          id: i.serviceEvent!.performerOrganization!.id,
          name: i.serviceEvent!.performerOrganization!.name,
          standardIndustryClassCode: i.serviceEvent!.performerOrganization!.practiceSetting,
        },
      },
    ]);
    expect(h.encounter).toEqual({
      start: i.encounter!.start,
      end: i.encounter!.end,
      healthCareFacilityCode: i.encounter!.healthCareFacility,
    });
    expect(h.body).toEqual({ kind: 'nonXMLBody', mediaType: 'application/pdf', representation: 'B64' });
  });

  it('uses an explicit legalAuthenticator', () => {
    const i = input();
    i.legalAuthenticator = {
      time: '20240316090000+0100',
      id: { root: '1.2.250.1.71.4.2.1', extension: '810009876543' },
      family: 'DURAND',
      given: 'Anne',
    };
    const h = readCdaHeader(buildN1(i));
    expect(h.legalAuthenticator).toEqual({
      time: '20240316090000+0100',
      id: i.legalAuthenticator.id,
      family: 'DURAND',
      given: ['Anne'],
    });
  });

  it('carries the exact PDF bytes in base64', () => {
    const doc = buildN1(input());
    expect(Buffer.from(bodyBase64(doc), 'base64').equals(PDF)).toBe(true);
  });

  it('escapes names with &, <, " and accents', () => {
    const i = input();
    i.document.title = 'CR <urgent> & "important" — écho cœur';
    i.document.code.displayName = 'Lettre "de" sortie & <suite>';
    i.patient.birthName = "D'ARC & <FILS>";
    i.patient.usedName = 'LÉGER "DIT" ÇA';
    i.patient.givenNames = ['JÉRÔME', 'AÏCHA&ZOÉ'];
    i.author.family = 'O"Brien <&> Müller';
    i.author.given = 'Hélène';
    i.author.organization.name = 'Clinique Saint-Éloi & Associés <SAS>';
    i.custodian.name = 'Hôpital "Européen"';
    const doc = buildN1(i);
    expect(xmllint(doc).status).toBe(0);
    const h = readCdaHeader(doc);
    expect(h.title).toBe(i.document.title);
    expect(h.code.displayName).toBe(i.document.code.displayName);
    expect(h.recordTarget.birthName).toBe(i.patient.birthName);
    expect(h.recordTarget.usedName).toBe(i.patient.usedName);
    expect(h.recordTarget.givenNames).toEqual(['JÉRÔME AÏCHA&ZOÉ']);
    expect(h.recordTarget.firstGivenName).toBe('JÉRÔME');
    expect(h.authors[0]!.person?.family).toBe(i.author.family);
    expect(h.authors[0]!.person?.given).toEqual(['Hélène']);
    expect(h.authors[0]!.organization?.name).toBe(i.author.organization.name);
    expect(h.custodian?.name).toBe(i.custodian.name);
  });

  it.each<[string, (i: N1Input) => void]>([
    ['patient.birthName', (i) => delete (i.patient as Partial<N1Input['patient']>).birthName],
    ['patient.birthName', (i) => (i.patient.birthName = '  ')],
    ['author.id', (i) => delete (i.author as Partial<N1Input['author']>).id],
    ['author.id.extension', (i) => (i.author.id.extension = '')],
    ['document.id', (i) => delete (i.document as Partial<N1Input['document']>).id],
    ['document.title', (i) => (i.document.title = '')],
    ['document.effectiveTime', (i) => (i.document.effectiveTime = '2024-03-15')],
    ['document.code.codeSystem', (i) => (i.document.code.codeSystem = '2.16..840')],
    ['patient.givenNames', (i) => (i.patient.givenNames = [])],
    ['patient.birthDate', (i) => delete (i.patient as Partial<N1Input['patient']>).birthDate],
    ['patient.ins', (i) => (delete i.patient.ins, delete i.patient.localIds)],
    ['author.organization', (i) => delete (i.author as Partial<N1Input['author']>).organization],
    ['author.organization.name', (i) => (i.author.organization.name = '')],
    ['custodian', (i) => delete (i as Partial<N1Input>).custodian],
    ['encounter.healthCareFacility.code', (i) => (i.encounter!.healthCareFacility.code = '')],
    ['serviceEvent.start', (i) => delete (i.serviceEvent as Partial<NonNullable<N1Input['serviceEvent']>>).start],
    ['pdf', (i) => (i.pdf = Buffer.alloc(0))],
    ['pdf', (i) => (i.pdf = Buffer.from('<ClinicalDocument/>'))],
    ['patient.birthName', (i) => (i.patient.birthName = 'A\u0001B')],
  ])('refuses a missing or unusable %s', (field, mutate) => {
    const e = refusal(mutate);
    expect(e.field).toBe(field);
    expect(e.message).toContain(field);
  });
});
