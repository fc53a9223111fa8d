import { spawnSync } from 'node:child_process';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import {
  ASSOCIATION_HAS_MEMBER,
  ASSOCIATION_RPLC,
  cx,
  provideAndRegisterRequest,
  STATUS_APPROVED,
  submitObjectsRequest,
  xcn,
  xon,
} from '../../src/xds/ebrim.js';
import { readSubmitObjectsRequest } from '../../src/xds/ebrim-read.js';
import { MetadataError, type DocumentEntry, type SubmissionSet } from '../../src/xds/model.js';

const INS_OID = '1.2.250.1.213.1.4.10';
const IDNPS = '1.2.250.1.71.4.2.1';
const IDNST = '1.2.250.1.71.4.2.2';
const NS_RIM = 'urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0';
const NS_LCM = 'urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0';
const NS_XDS = 'urn:ihe:iti:xds-b:2007';

const DE = {
  author: 'urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d',
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  confidentialityCode: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
  healthcareFacilityTypeCode: 'urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1',
  practiceSettingCode: 'urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  eventCodeList: 'urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4',
  patientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  uniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
};
const SS = {
  node: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
  author: 'urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d',
  contentTypeCode: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
  uniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
  sourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
  patientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
};

const ins = { id: '279035121518989', authority: INS_OID, type: 'NH' };
const ipp = { id: 'IPP-0042', authority: '1.2.250.1.999.1.2.3', type: 'PI' };
const author = {
  person: { id: '810002909371', idAuthority: IDNPS, family: 'MEDECIN', given: 'JEAN' },
  institutions: [{ name: 'CH Test A&B <Sud>', id: '1999999999', idAuthority: IDNST }],
  roles: ['Médecin responsable'],
  specialties: [
    { code: 'G15_10/SM26', scheme: '1.2.250.1.213.1.1.4.5', display: 'Qualifié en médecine générale (SM)' },
  ],
};

function entry(over: Partial<DocumentEntry> = {}): DocumentEntry {
  return {
    entryUUID: 'urn:uuid:0b5f8d5e-7f0b-4a48-9d36-6e4f6f1e1a01',
    uniqueId: '1.2.250.1.999.1.1.7.20240315.1',
    mimeType: 'text/xml',
    title: 'CR hospitalisation <jour> & suites',
    typeCode: { code: '11490-0', scheme: '2.16.840.1.113883.6.1', display: 'Lettre de liaison à la sortie' },
    classCode: { code: '10', scheme: '1.2.250.1.213.1.1.4.1', display: 'Compte rendu' },
    formatCode: {
      code: 'urn:ihe:pcc:xds-ms:2007',
      scheme: '1.3.6.1.4.1.19376.1.2.3',
      display: 'Medical Summaries (XDS-MS)',
    },
    confidentialityCodes: [{ code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' }],
    healthcareFacilityTypeCode: {
      code: 'SA01',
      scheme: '1.2.250.1.71.4.2.4',
      display: 'Etablissement Public de santé',
    },
    practiceSettingCode: { code: 'ETABLISSEMENT', scheme: '1.2.250.1.213.1.1.4.9', display: 'Etablissement de santé' },
    languageCode: 'fr-FR',
    creationTime: '20240315101500',
    serviceStartTime: '20240314080000',
    serviceStopTime: '20240315100000',
    patientId: ins,
    sourcePatientId: ipp,
    sourcePatientInfo: ['PID-5|PAT-TROIS^DOMINIQUE^^^^^L', 'PID-7|19790315', 'PID-8|F'],
    authors: [author],
    legalAuthenticator: { id: '810002909371', idAuthority: IDNPS, family: 'MEDECIN', given: 'JEAN' },
    eventCodes: [{ code: 'GLQP012', scheme: '1.2.250.1.213.2.5', display: 'Scanner <abdomen> & pelvis' }],
    referenceIds: ['VN-778899^^^&1.2.250.1.999.1.4&ISO^urn:ihe:iti:xds:2015:encounterId'],
    hash: 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
    size: 12345,
    ...over,
  };
}

const set: SubmissionSet = {
  entryUUID: 'urn:uuid:5b1c6d1a-1f0e-4c4b-8a9e-2f0c3c4d5e01',
  uniqueId: '1.2.250.1.999.1.1.8.20240315.1',
  sourceId: '1.2.250.1.999.1.1',
  submissionTime: '20240315101600',
  contentTypeCode: { code: '04', scheme: '1.2.250.1.213.2.2', display: 'Hospitalisation de jour' },
  patientId: ins,
  author,
  title: 'Lot <1> & co',
};

const ARRAYS = new Set([
  'rim:Slot',
  'rim:Value',
  'rim:Classification',
  'rim:ExternalIdentifier',
  'rim:ExtrinsicObject',
  'rim:Association',
  'xds:Document',
]);
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => ARRAYS.has(name),
});

/** An element as `parser` reads it: its attributes as '@name' strings, the ARRAYS elements as lists. */
interface Node {
  readonly [attribute: `@${string}`]: string;
  readonly 'rim:Slot'?: Node[];
  readonly 'rim:ValueList'?: Node;
  readonly 'rim:Value'?: string[];
  readonly 'rim:Name'?: Node;
  readonly 'rim:LocalizedString'?: Node;
  readonly 'rim:Classification'?: Node[];
  readonly 'rim:ExternalIdentifier'?: Node[];
  readonly 'rim:ExtrinsicObject'?: Node[];
  readonly 'rim:RegistryPackage'?: Node;
  readonly 'rim:Association'?: Node[];
  readonly 'xds:Document'?: Node[];
  readonly 'xop:Include'?: Node;
}
const slots = (n: Node): Record<string, string[]> =>
  Object.fromEntries((n['rim:Slot'] ?? []).map((s: Node) => [s['@name'], s['rim:ValueList']!['rim:Value']!]));
const name = (n: Node): string => n['rim:Name']!['rim:LocalizedString']!['@value'];
const classif = (n: Node, scheme: string): Node[] =>
  (n['rim:Classification'] ?? []).filter((c: Node) => c['@classificationScheme'] === scheme);
const extId = (n: Node, scheme: string): Node =>
  (n['rim:ExternalIdentifier'] ?? []).find((e: Node) => e['@identificationScheme'] === scheme)!;

function xmllint(xml: string): { status: number | null; stderr: string } {
  const r = spawnSync('xmllint', ['--noout', '-'], { input: xml, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

function parseSubmit(xml: string): Node {
  return parser.parse(xml)['lcm:SubmitObjectsRequest']['rim:RegistryObjectList'];
}

describe('HL7 v2 typed values', () => {
  it('XCN with the ANS IDNPS suffix for a national PS identifier', () => {
    expect(xcn({ id: '810002909371', idAuthority: IDNPS, family: 'MEDECIN', given: 'JEAN' })).toBe(
      `810002909371^MEDECIN^JEAN^^^^^^&${IDNPS}&ISO^D^^^IDNPS`,
    );
  });
  it('XCN without type suffix for other authorities, and escapes HL7 delimiters', () => {
    expect(xcn({ id: 'X1', idAuthority: '1.2.3', family: "D'ARC & FILS", given: 'J^P' })).toBe(
      "X1^D'ARC \\T\\ FILS^J\\S\\P^^^^^^&1.2.3&ISO",
    );
    expect(xcn({ family: 'SEUL' })).toBe('^SEUL');
    expect(xcn({ id: 'S1', idAuthority: '1.2.3', nameType: 'U', idType: 'EI' })).toBe('S1^^^^^^^^&1.2.3&ISO^U^^^EI');
  });
  it('XON', () => {
    expect(xon({ name: 'BCOM', id: '499700367909006', idAuthority: IDNST })).toBe(
      `BCOM^^^^^&${IDNST}&ISO^IDNST^^^499700367909006`,
    );
    expect(xon({ name: 'Clinique A&B' })).toBe('Clinique A\\T\\B');
    expect(xon({ name: 'Labo', id: '1.2.250.1.999' })).toBe('Labo^^^^^^^^^1.2.250.1.999');
  });
  it('CX', () => {
    expect(cx(ins)).toBe(`279035121518989^^^&${INS_OID}&ISO^NH`);
    expect(cx({ id: '42', authority: '1.2.3', type: '' })).toBe('42^^^&1.2.3&ISO');
    expect(() => cx({ id: '', authority: INS_OID, type: 'NH' })).toThrow(MetadataError);
  });
});

describe('submitObjectsRequest', () => {
  const xml = submitObjectsRequest(set, [entry()]);
  const list = parseSubmit(xml);
  const eo: Node = list['rim:ExtrinsicObject']![0]!;
  const rp: Node = list['rim:RegistryPackage']!;
  const E = entry();

  it('is well-formed and namespaced', () => {
    expect(xmllint(xml)).toEqual({ status: 0, stderr: '' });
    const root = parser.parse(xml)['lcm:SubmitObjectsRequest'];
    expect(root['@xmlns:lcm']).toBe(NS_LCM);
    expect(root['@xmlns:rim']).toBe(NS_RIM);
  });

  it('ExtrinsicObject attributes, slots and name', () => {
    expect(eo['@id']).toBe(E.entryUUID);
    expect(eo['@mimeType']).toBe('text/xml');
    expect(eo['@objectType']).toBe('urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1');
    expect(eo['@status']).toBe(STATUS_APPROVED);
    expect(slots(eo)).toEqual({
      creationTime: ['20240315101500'],
      languageCode: ['fr-FR'],
      legalAuthenticator: [`810002909371^MEDECIN^JEAN^^^^^^&${IDNPS}&ISO^D^^^IDNPS`],
      serviceStartTime: ['20240314080000'],
      serviceStopTime: ['20240315100000'],
      sourcePatientId: ['IPP-0042^^^&1.2.250.1.999.1.2.3&ISO^PI'],
      sourcePatientInfo: ['PID-5|PAT-TROIS^DOMINIQUE^^^^^L', 'PID-7|19790315', 'PID-8|F'],
      hash: ['da39a3ee5e6b4b0d3255bfef95601890afd80709'],
      size: ['12345'],
      'urn:ihe:iti:xds:2013:referenceIdList': ['VN-778899^^^&1.2.250.1.999.1.4&ISO^urn:ihe:iti:xds:2015:encounterId'],
    });
    expect(name(eo)).toBe('CR hospitalisation <jour> & suites');
    expect(xml).toContain('value="CR hospitalisation &lt;jour&gt; &amp; suites"');
  });

  it('ebRIM child order: Slots, Name, Classifications, ExternalIdentifiers', () => {
    const start = xml.indexOf('<rim:ExtrinsicObject');
    const body = xml.slice(start, xml.indexOf('</rim:ExtrinsicObject>'));
    const lastSlot = body.lastIndexOf('<rim:Slot name="urn:ihe');
    const nameAt = body.indexOf('<rim:Name>');
    const firstCl = body.indexOf('<rim:Classification');
    const firstEi = body.indexOf('<rim:ExternalIdentifier');
    expect(lastSlot).toBeLessThan(nameAt);
    expect(nameAt).toBeLessThan(firstCl);
    expect(firstCl).toBeLessThan(firstEi);
  });

  it('every DocumentEntry classification with code, scheme and display', () => {
    const cases: [string, { code: string; scheme: string; display?: string }][] = [
      [DE.classCode, E.classCode],
      [DE.confidentialityCode, E.confidentialityCodes[0]!],
      [DE.formatCode, E.formatCode],
      [DE.healthcareFacilityTypeCode, E.healthcareFacilityTypeCode],
      [DE.practiceSettingCode, E.practiceSettingCode],
      [DE.typeCode, E.typeCode],
      [DE.eventCodeList, E.eventCodes[0]!],
    ];
    for (const [scheme, code] of cases) {
      const cl = classif(eo, scheme);
      expect(cl, scheme).toHaveLength(1);
      expect(cl[0]!['@nodeRepresentation']).toBe(code.code);
      expect(cl[0]!['@classifiedObject']).toBe(E.entryUUID);
      expect(slots(cl[0]!)).toEqual({ codingScheme: [code.scheme] });
      expect(name(cl[0]!)).toBe(code.display);
    }
    expect(name(classif(eo, DE.eventCodeList)[0]!)).toBe('Scanner <abdomen> & pelvis');
  });

  it('classification ids are unique', () => {
    const ids = [...xml.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('DocumentEntry author classification', () => {
    const [a] = classif(eo, DE.author);
    expect(a!['@nodeRepresentation']).toBe('');
    expect(slots(a!)).toEqual({
      authorPerson: [`810002909371^MEDECIN^JEAN^^^^^^&${IDNPS}&ISO^D^^^IDNPS`],
      authorInstitution: [`CH Test A\\T\\B <Sud>^^^^^&${IDNST}&ISO^IDNST^^^1999999999`],
      authorRole: ['Médecin responsable'],
      authorSpecialty: ['G15_10/SM26^Qualifié en médecine générale (SM)^1.2.250.1.213.1.1.4.5'],
    });
    expect(xml).toContain('CH Test A\\T\\B &lt;Sud&gt;^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO');
  });

  it('DocumentEntry external identifiers', () => {
    expect(extId(eo, DE.patientId)['@value']).toBe(`279035121518989^^^&${INS_OID}&ISO^NH`);
    expect(extId(eo, DE.patientId)['@registryObject']).toBe(E.entryUUID);
    expect(name(extId(eo, DE.patientId))).toBe('XDSDocumentEntry.patientId');
    expect(extId(eo, DE.uniqueId)['@value']).toBe(E.uniqueId);
    expect(name(extId(eo, DE.uniqueId))).toBe('XDSDocumentEntry.uniqueId');
  });

  it('SubmissionSet RegistryPackage', () => {
    expect(rp['@id']).toBe(set.entryUUID);
    expect(slots(rp)).toEqual({ submissionTime: ['20240315101600'] });
    expect(name(rp)).toBe('Lot <1> & co');
    const node = (rp['rim:Classification'] as Node[]).filter((c) => c['@classificationNode'] === SS.node);
    expect(node).toHaveLength(1);
    expect(node[0]!['@classifiedObject']).toBe(set.entryUUID);
    const [ct] = classif(rp, SS.contentTypeCode);
    expect(ct!['@nodeRepresentation']).toBe('04');
    expect(slots(ct!)).toEqual({ codingScheme: ['1.2.250.1.213.2.2'] });
    expect(name(ct!)).toBe('Hospitalisation de jour');
    const [au] = classif(rp, SS.author);
    expect(slots(au!).authorPerson).toEqual([`810002909371^MEDECIN^JEAN^^^^^^&${IDNPS}&ISO^D^^^IDNPS`]);
    expect(extId(rp, SS.uniqueId)['@value']).toBe(set.uniqueId);
    expect(extId(rp, SS.sourceId)['@value']).toBe(set.sourceId);
    expect(extId(rp, SS.patientId)['@value']).toBe(`279035121518989^^^&${INS_OID}&ISO^NH`);
    expect(name(extId(rp, SS.patientId))).toBe('XDSSubmissionSet.patientId');
  });

  it('HasMember association, no RPLC without replacement', () => {
    const as: Node[] = list['rim:Association']!;
    expect(as).toHaveLength(1);
    expect(as[0]!['@associationType']).toBe(ASSOCIATION_HAS_MEMBER);
    expect(as[0]!['@sourceObject']).toBe(set.entryUUID);
    expect(as[0]!['@targetObject']).toBe(E.entryUUID);
    expect(slots(as[0]!)).toEqual({ SubmissionSetStatus: ['Original'] });
  });
});

describe('variants', () => {
  it('RPLC association from the new entry to the replaced one', () => {
    const old = 'urn:uuid:9e0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d';
    const xml = submitObjectsRequest(set, [entry()], { replaces: { entryUUID: old } });
    expect(xmllint(xml).status).toBe(0);
    const as: Node[] = parseSubmit(xml)['rim:Association']!;
    const rplc = as.filter((a) => a['@associationType'] === ASSOCIATION_RPLC);
    expect(rplc).toHaveLength(1);
    expect(rplc[0]!['@sourceObject']).toBe(entry().entryUUID);
    expect(rplc[0]!['@targetObject']).toBe(old);
    expect(as.filter((a) => a['@associationType'] === ASSOCIATION_HAS_MEMBER)).toHaveLength(1);
    expect(() => submitObjectsRequest(set, [entry()], { replaces: { entryUUID: entry().entryUUID } })).toThrow(
      MetadataError,
    );
  });

  it('several confidentiality codes give one classification each', () => {
    const codes = [
      { code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' },
      { code: 'MASQUE_PS', scheme: '1.2.250.1.213.1.1.4.13', display: 'Masqué aux professionnels de santé' },
      { code: 'INVISIBLE_PATIENT', scheme: '1.2.250.1.213.1.1.4.13', display: 'Non visible par le patient' },
    ];
    const eo = parseSubmit(submitObjectsRequest(set, [entry({ confidentialityCodes: codes })]))[
      'rim:ExtrinsicObject'
    ]![0]!;
    const cls = classif(eo, DE.confidentialityCode);
    expect(cls.map((c) => [c['@nodeRepresentation'], slots(c).codingScheme![0], name(c)])).toEqual(
      codes.map((c) => [c.code, c.scheme, c.display]),
    );
  });

  it('optional values are omitted, XDM URI slot on request', () => {
    const e = entry({
      serviceStartTime: undefined,
      serviceStopTime: undefined,
      legalAuthenticator: undefined,
      referenceIds: [],
      eventCodes: [],
    });
    const xml = submitObjectsRequest(set, [e], { documentUris: { [e.entryUUID]: 'DOC0001.XML' } });
    const eo = parseSubmit(xml)['rim:ExtrinsicObject']![0]!;
    const s = slots(eo);
    expect(Object.keys(s)).not.toContain('serviceStartTime');
    expect(Object.keys(s)).not.toContain('legalAuthenticator');
    expect(Object.keys(s)).not.toContain('urn:ihe:iti:xds:2013:referenceIdList');
    expect(s.URI).toEqual(['DOC0001.XML']);
    expect(classif(eo, DE.eventCodeList)).toHaveLength(0);
  });

  it('missing required coded values are named', () => {
    expect(() => submitObjectsRequest(set, [entry({ confidentialityCodes: [] })])).toThrow(/confidentialityCode/);
    expect(() =>
      submitObjectsRequest(set, [entry({ typeCode: { code: '11490-0', scheme: '2.16.840.1.113883.6.1' } })]),
    ).toThrow(/DocumentEntry\.typeCode\.display/);
    expect(() => submitObjectsRequest(set, [])).toThrow(MetadataError);
  });

  it('XML-invalid control characters are dropped', () => {
    const xml = submitObjectsRequest(set, [entry({ title: 'CR\u0001 test\u000b' })]);
    expect(xmllint(xml).status).toBe(0);
    expect(name(parseSubmit(xml)['rim:ExtrinsicObject']![0]!)).toBe('CR test');
  });

  it('text that looks like references (&nbsp; &lt;b&gt;) is written as text, and read back as sent', () => {
    // Issue 12: xmlbuilder2 left `&name;` unescaped: an undefined entity (the DMP refused the request) or
    // markup (`<b>` reached the DMP).
    for (const title of ['Bilan &nbsp; suivi', '&lt;b&gt; & <i>', 'R&D &#38; &amp;']) {
      const xml = submitObjectsRequest(set, [entry({ title })]);
      expect(xmllint(xml).status, title).toBe(0);
      expect(readSubmitObjectsRequest(Buffer.from(xml)).entries[0]!.title).toBe(title);
    }
  });
});

describe('provideAndRegisterRequest', () => {
  const e1 = entry();
  const e2 = entry({
    entryUUID: 'urn:uuid:0b5f8d5e-7f0b-4a48-9d36-6e4f6f1e1a02',
    uniqueId: '1.2.250.1.999.1.1.7.20240315.2',
    mimeType: 'application/xslt+xml',
    title: 'Feuille de style',
  });
  const xml = provideAndRegisterRequest(set, [
    { entry: e1, contentId: 'doc1@pfi.example' },
    { entry: e2, contentId: 'cid:doc2@pfi.example' },
  ]);

  it('wraps the SubmitObjectsRequest and references the MTOM parts', () => {
    expect(xmllint(xml)).toEqual({ status: 0, stderr: '' });
    const root = parser.parse(xml)['xds:ProvideAndRegisterDocumentSetRequest'];
    expect(root['@xmlns:xds']).toBe(NS_XDS);
    const list = root['lcm:SubmitObjectsRequest']['rim:RegistryObjectList'];
    expect(list['rim:ExtrinsicObject'].map((o: Node) => o['@id'])).toEqual([e1.entryUUID, e2.entryUUID]);
    expect(list['rim:Association'].map((a: Node) => [a['@sourceObject'], a['@targetObject']])).toEqual([
      [set.entryUUID, e1.entryUUID],
      [set.entryUUID, e2.entryUUID],
    ]);
    const docs: Node[] = root['xds:Document'];
    expect(docs.map((d) => [d['@id'], d['xop:Include']!['@href'], d['xop:Include']!['@xmlns:xop']])).toEqual([
      [e1.entryUUID, 'cid:doc1@pfi.example', 'http://www.w3.org/2004/08/xop/include'],
      [e2.entryUUID, 'cid:doc2@pfi.example', 'http://www.w3.org/2004/08/xop/include'],
    ]);
  });

  it('Document elements come after the SubmitObjectsRequest', () => {
    expect(xml.indexOf('</lcm:SubmitObjectsRequest>')).toBeLessThan(xml.indexOf('<xds:Document'));
  });

  it('rejects duplicate entry ids', () => {
    expect(() =>
      provideAndRegisterRequest(set, [
        { entry: e1, contentId: 'a' },
        { entry: e1, contentId: 'b' },
      ]),
    ).toThrow(/duplicate/);
  });
});
