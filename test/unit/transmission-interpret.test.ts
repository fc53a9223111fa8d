import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { splitMessages } from '../../src/cli/split.js';
import { readCdaHeader } from '../../src/cda/header.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { interpret, InterpretationError, type Submission } from '../../src/flows/transmission/interpret.js';
import { loadTransmissionMapping } from '../../src/flows/transmission/mapping.js';
import { utc } from '../../src/flows/transmission/metadata.js';
import { cx } from '../../src/xds/ebrim.js';
import { Terminology } from '../../src/xds/terminology.js';
import { packageRoot } from '../../src/util/paths.js';

const ROOT = packageRoot();
const REF = join(ROOT, '..', 'shared', 'reference', 'ansforge');
const V2 = join(REF, 'hl7v2-exemples', 'Vague 2', 'Trans_Doc-CDA-HL7V2', 'TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1');
const V20 = join(REF, 'hl7v2-exemples', 'Volets', 'TRANS_DOC_CDA_HL7V2', 'V2.0');
const V21 = join(REF, 'hl7v2-exemples', 'Volets', 'TRANS_DOC_CDA_HL7V2', 'V2.1');
const terminology = Terminology.load(join(ROOT, 'mappings', 'terminology.json'));
const mapping = loadTransmissionMapping(join(ROOT, 'mappings', 'transmission.yaml'));

const message = (file: string) => Hl7Message.parse(splitMessages(readFileSync(file))[0]!);
const read = (file: string) => interpret(message(file), { terminology, mapping });
const refusal = (fn: () => unknown): InterpretationError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof InterpretationError) return e;
    throw e;
  }
  throw new Error('no InterpretationError');
};

describe('the PAT-TROIS CR d’imagerie (Vague 2, MDM^T02, CDA N1 in Base64)', () => {
  const dir = join(V2, 'MDM', 'Transmission initiale MDM');
  const sub = read(join(dir, 'message_MDM_CR_Radio_INIT_N1_Base64.er7'));
  const cda = readCdaHeader(readFileSync(join(dir, 'CR_Radio_CDAN1_v1.XML')));
  const entry = sub.documents[0]!.entry;

  test('one document, a new one', () => {
    expect(sub.event).toBe('new');
    expect(sub.documents).toHaveLength(1);
  });

  test('patient identifiers from PID-3', () => {
    expect(cx(entry.patientId)).toBe('279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH');
    expect(sub.submissionSet.patientId).toEqual(entry.patientId);
    expect(entry.sourcePatientInfo).toContain('PID-5|PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L');
  });

  test('codes: type, class (ASS_X16), format (ASS_A11, N1 PDF), confidentiality with the flags as sent', () => {
    expect(entry.typeCode).toEqual({ code: '18748-4', scheme: '2.16.840.1.113883.6.1', display: cda.code.displayName });
    expect(entry.classCode).toMatchObject({ code: '31', scheme: '1.2.250.1.213.1.1.4.1' });
    expect(entry.formatCode).toMatchObject({ code: 'urn:ihe:iti:xds-sd:pdf:2008', scheme: '1.3.6.1.4.1.19376.1.2.3' });
    // The message says MASQUE_PS=N, INVISIBLE_PATIENT=Y, INVISIBLE_REP_LEGAUX=Y.
    expect(entry.confidentialityCodes.map((c) => `${c.code}@${c.scheme}`)).toEqual([
      `${cda.confidentialityCode!.code}@2.16.840.1.113883.5.25`,
      'INVISIBLE_PATIENT@1.2.250.1.213.1.1.4.13',
      'INVISIBLE_REPRESENTANTS_LEGAUX@1.2.250.1.213.1.1.4.13',
    ]);
  });

  test('every other field equals the CDA it carries', () => {
    expect(entry.uniqueId).toBe(cda.id.extension ? `${cda.id.root}^${cda.id.extension}` : cda.id.root);
    expect(entry.title).toBe(cda.title);
    expect(entry.languageCode).toBe(cda.languageCode);
    expect(entry.creationTime).toBe(utc(cda.effectiveTime!));
    expect(entry.serviceStartTime).toBe(utc(cda.serviceEvents[0]!.start!));
    expect(entry.healthcareFacilityTypeCode.code).toBe(cda.encounter!.healthCareFacilityCode!.code);
    expect(entry.practiceSettingCode.code).toBe(
      cda.serviceEvents[0]!.performerOrganization!.standardIndustryClassCode!.code,
    );
    expect(entry.authors[0]!.person!.id).toBe(cda.authors[0]!.person!.id!.extension);
    expect(entry.legalAuthenticator?.family).toBe(cda.legalAuthenticator?.family);
    expect(entry.mimeType).toBe('text/xml');
  });

  test('hash and size are those of the document bytes', () => {
    const msg = message(join(dir, 'message_MDM_CR_Radio_INIT_N1_Base64.er7'));
    const bytes = Buffer.from(msg.get('OBX-5.5')!, 'base64');
    expect(entry.hash).toBe(createHash('sha1').update(bytes).digest('hex'));
    expect(entry.size).toBe(bytes.length);
  });

  test('submission set: sender from PRT SB, content type from PV1-2, source id from the mapping', () => {
    expect(sub.submissionSet.author.person).toMatchObject({
      id: '801234564895',
      family: 'Eric',
      given: 'Thomas',
      idAuthority: '1.2.250.1.71.4.2.1',
    });
    expect(sub.submissionSet.author.institutions[0]).toMatchObject({ name: 'Organisation-Y', id: '300017985' });
    expect(sub.submissionSet.contentTypeCode.code).toBe('03'); // PV1-2 = I
    expect(sub.submissionSet.sourceId).toBe(mapping.sourceId);
    expect(sub.submissionSet.uniqueId.startsWith(mapping.submissionSetIdRoot + '.')).toBe(true);
  });

  test('routes as flagged: DMP, MSSanté to the professional with the mail body, no patient mail', () => {
    expect(sub.routes.dmp).toBe(true);
    expect(sub.routes.mssantePS?.recipients).toEqual(['adam.hoda@test-ci-sis.mssante.fr']);
    expect(sub.routes.mssantePS?.body).toMatch(/^Cher confrère/);
    expect(sub.routes.mssantePatient).toBeUndefined();
    expect(sub.routes.acks).toEqual({ reception: false, reading: false });
  });

  test('the placeholder variant is refused: its OBX-5 is not a CDA', () => {
    const e = refusal(() => read(join(dir, 'message_MDM_CR_Radio_INIT_N1.er7')));
    expect(e.rule).toBe('OBX-5-cda');
    expect(e.message).toMatch(/Not a CDA document/);
    expect(e.location).toMatchObject({ segment: 'OBX', sequence: 1, field: 5 });
  });

  test('the placeholder variant with the real CDA put back gives the same metadata as the Base64 variant', () => {
    const msg = message(join(dir, 'message_MDM_CR_Radio_INIT_N1.er7'));
    msg.set('OBX-5.4', 'Base64');
    msg.set('OBX-5.5', readFileSync(join(dir, 'CR_Radio_CDAN1_v1.XML')).toString('base64'));
    const other = interpret(msg, { terminology, mapping });
    const strip = (s: Submission) => s.documents.map(({ entry: { entryUUID, hash, size, ...rest } }) => rest);
    expect(strip(other)).toEqual(strip(sub));
  });
});

describe('replacement and deletion (Vague 2 MDM)', () => {
  test('T10 replaces the document named by TXA-13; T04 deletes it', () => {
    const rplc = read(join(V2, 'MDM', 'Remplacement MDM', 'message_MDM_CR_Radio_RPLC_N1.er7'));
    expect(rplc.event).toBe('replace');
    expect(rplc.replaces).toBe('1.2.250.1.71.4.2.2.120456789.71024000081');
    const del = read(join(V2, 'MDM', 'Suppression MDM', 'message_MDM_CR_Radio_DEL_N1.er7'));
    expect(del.event).toBe('delete');
  });
});

describe('ORU^R01 with a CDA N1 and a CDA N3 of the same result', () => {
  test('two documents, PDF and XD-LAB formats, same type and class', () => {
    const sub = read(join(V20, 'ORU', 'Remplacement ORU', 'message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7'));
    expect(sub.event).toBe('replace'); // OBX-11 = C
    expect(sub.documents.map((d) => d.entry.formatCode.code)).toEqual([
      'urn:ihe:iti:xds-sd:pdf:2008',
      'urn:ihe:lab:xd-lab:2008',
    ]);
    expect(new Set(sub.documents.map((d) => `${d.entry.typeCode.code}/${d.entry.classCode.code}`))).toEqual(
      new Set(['11502-2/10']),
    );
    expect(sub.documents[0]!.entry.patientId.id).toBe('277076322082910');
  });

  test('the Ségur ORU (N3 only) asks for both business acknowledgements', () => {
    const sub = read(join(V2, 'ORU', 'Transmission initiale ORU', 'message_ORU_CR_Bio_INIT_N3_SEGUR.hl7'));
    expect(sub.documents.map((d) => d.entry.formatCode.code)).toEqual(['urn:ihe:lab:xd-lab:2008']);
    expect(sub.routes.acks).toEqual({ reception: true, reading: true });
  });

  test('a message carrying another patient’s documents is refused on PID-3 (ANS examples V2.1 ORU Base64)', () => {
    const e = refusal(() =>
      read(join(V21, 'ORU', 'Remplacement ORU', 'message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7')),
    );
    expect(e.rule).toBe('PID-3-equals-recordTarget');
    expect(e.message).toContain('279035121518989@1.2.250.1.213.1.4.10');
    expect(e.message).toContain('277076322082910@1.2.250.1.213.1.4.8');
  });
});

describe('TXA-12 must name the CDA', () => {
  test('another id in TXA-12 is refused with the rule and the CDA id', () => {
    const msg = message(join(V2, 'MDM', 'Transmission initiale MDM', 'message_MDM_CR_Radio_INIT_N1_Base64.er7'));
    msg.set('TXA-12.1', '1.2.250.1.999.1.2.3');
    const e = refusal(() => interpret(msg, { terminology, mapping }));
    expect(e.rule).toBe('TXA-12-equals-ClinicalDocument-id');
    expect(e.location).toMatchObject({ segment: 'TXA', field: 12 });
  });
});

describe('referenceIdList', () => {
  test('the orders a CDA answers (inFulfillmentOf/order/id) become XDS CXi references', () => {
    const file = readdirSync(join(REF, 'cda-examples')).find(
      (f) => f.startsWith('IMG-CR-IMG') || f.startsWith('IMG_CR_IMG'),
    )!;
    const header = readCdaHeader(readFileSync(join(REF, 'cda-examples', file)));
    expect(header.orderIds).toContainEqual({ root: '1.2.250.1.748.12345678.12', extension: '984375862' });
  });
});

describe('every ANS example CDA, wrapped in an MDM^T02', () => {
  const dir = join(REF, 'cda-examples');
  const template = readFileSync(join(ROOT, 'fixtures', 'mdm-t02-demo.hl7'));
  const files = readdirSync(dir).filter((f) => f.endsWith('.xml'));

  test('there are examples', () => expect(files.length).toBeGreaterThan(40));

  for (const f of files) {
    test(f, () => {
      const bytes = readFileSync(join(dir, f));
      let header;
      try {
        header = readCdaHeader(bytes);
      } catch {
        return; // not a CDA document (the catalogue of models): the CDA reader's tests cover it
      }
      // The message says what the document says about the patient and its id, as a CREATEUR would.
      const ids = header.recordTarget.ids.filter((i) => i.extension);
      const pid3 = ids
        .map((i) => {
          const type = header.recordTarget.ins && i.root === header.recordTarget.ins.oid ? 'INS' : 'PI';
          return `${i.extension}^^^&${i.root}&ISO^${type}`;
        })
        .join('~');
      const text = splitMessages(template)[0]!
        .toString('utf8')
        .replace(/\rPID\|\|\|[^|]*\|/, `\rPID|||${pid3}|`);
      const msg = Hl7Message.parse(text);
      msg.set('TXA-12.1', header.id.extension ?? header.id.root);
      msg.set('TXA-12.3', header.id.extension ? header.id.root : '');
      msg.set('OBX-5.5', bytes.toString('base64'));
      try {
        const sub = interpret(msg, { terminology, mapping });
        const e = sub.documents[0]!.entry;
        expect(e.referenceIds).toEqual(
          header.orderIds
            .filter((o) => o.extension)
            .map((o) => `${o.extension}^^^&${o.root}&ISO^urn:ihe:iti:xds:2013:order`),
        );
        for (const [k, v] of Object.entries({
          uniqueId: e.uniqueId,
          title: e.title,
          typeCode: e.typeCode.code,
          classCode: e.classCode.code,
          formatCode: e.formatCode.code,
          confidentiality: e.confidentialityCodes[0]?.code,
          facility: e.healthcareFacilityTypeCode.code,
          practice: e.practiceSettingCode.code,
          language: e.languageCode,
          creationTime: e.creationTime,
          patientId: e.patientId.id,
        })) {
          expect(v, k).toBeTruthy();
        }
      } catch (e) {
        // Otherwise the refusal names what the document lacks.
        expect(e).toBeInstanceOf(InterpretationError);
        expect((e as InterpretationError).rule).toMatch(/^(XDS-[a-zA-Z]+|PID-3-equals-recordTarget)$/);
        expect((e as InterpretationError).message.length).toBeGreaterThan(20);
      }
    });
  }
});

describe('engine extension: a PDF instead of a CDA', () => {
  const pdf = Buffer.from(
    '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n' +
      'trailer<</Root 1 0 R>>\n%%EOF\n',
    'latin1',
  );
  const withDefaults = {
    ...mapping,
    defaults: {
      practiceSettingCode: {
        code: 'ETABLISSEMENT',
        scheme: '1.2.250.1.213.1.1.4.9',
        display: 'Etablissement de santé',
      },
      healthcareFacilityTypeCode: {
        code: 'SA01',
        scheme: '1.2.250.1.71.4.2.4',
        display: 'Etablissement Public de santé',
      },
    },
  };
  const pdfMessage = () => {
    const msg = Hl7Message.parse(splitMessages(readFileSync(join(ROOT, 'fixtures', 'mdm-t02-demo.hl7')))[0]!);
    msg.set('OBX-5.2', 'application');
    msg.set('OBX-5.3', 'PDF');
    msg.set('OBX-5.5', pdf.toString('base64'));
    return msg;
  };

  test('is wrapped in a CDA N1 that validates against the ANS XSD and carries the message’s metadata', async () => {
    const msg = pdfMessage();
    const sub = interpret(msg, { terminology, mapping: withDefaults });
    const doc = sub.documents[0]!;
    expect(doc.mediaType).toBe('application/pdf');
    const cda = Buffer.from(doc.generatedCda!, 'base64');

    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const tmp = mkdtempSync(join(tmpdir(), 'pfi-n1-'));
    writeFileSync(join(tmp, 'n1.xml'), cda);
    const xsd = join(REF, 'cda-xsd', 'cda', 'CDA_extended.xsd');
    expect(() =>
      execFileSync('xmllint', ['--noout', '--schema', xsd, join(tmp, 'n1.xml')], { stdio: 'pipe' }),
    ).not.toThrow();
    rmSync(tmp, { recursive: true, force: true });

    // Read back: the metadata are the message's.
    const e = doc.entry;
    expect(cx(e.patientId)).toBe(`${msg.get('PID-3[1].1')}^^^&1.2.250.1.213.1.4.10&ISO^NH`);
    expect(e.sourcePatientId).toEqual({ id: 'DEMO0001', authority: '1.2.250.1.999.9.1', type: 'PI' });
    expect(e.uniqueId).toBe(msg.get('TXA-12.1'));
    expect(e.typeCode).toMatchObject({ code: '11488-4', scheme: '2.16.840.1.113883.6.1' });
    expect(e.title).toBe('Compte rendu de consultation');
    expect(e.formatCode.code).toBe('urn:ihe:iti:xds-sd:pdf:2008');
    expect(e.classCode.code).toBeTruthy();
    expect(e.practiceSettingCode.code).toBe('ETABLISSEMENT');
    expect(e.healthcareFacilityTypeCode.code).toBe('SA01');
    expect(e.authors[0]!.person?.id).toBe('899999999999');
    expect(e.authors[0]!.institutions[0]).toMatchObject({ name: 'CH-DEMO', id: '999999999' });
    expect(e.creationTime).toBe('20261121100000');
    const back = readCdaHeader(cda);
    expect(back.body).toMatchObject({ kind: 'nonXMLBody', mediaType: 'application/pdf' });
    expect(back.recordTarget.birthName).toBe('DEMO');
  });

  test('without the mapping defaults a CDA N1 cannot be built: the missing metadata is named', () => {
    const e = refusal(() => interpret(pdfMessage(), { terminology, mapping }));
    expect(e.rule).toBe('XDS-practiceSettingCode');
  });
});
