import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CdaError, DocumentError, extractDocuments, readCdaHeader, type CdaHeader } from '../../src/cda/index.js';
import { Hl7Message } from '../../src/hl7v2/index.js';
import { packageRoot } from '../../src/util/paths.js';

const HL7 = join(packageRoot(), '..', 'shared', 'reference', 'ansforge', 'hl7v2-exemples');
const V20 = 'Volets/TRANS_DOC_CDA_HL7V2/V2.0';
const V21 = 'Volets/TRANS_DOC_CDA_HL7V2/V2.1';
const VAGUE2 = 'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1';

const message = (path: string) => Hl7Message.parse(readFileSync(join(HL7, path), 'utf8').replace(/\n/g, '\r'));
const file = (path: string) => readFileSync(join(HL7, path));

/** What a header must share with the .XML beside the message. */
const identity = (h: CdaHeader) => ({
  id: h.id,
  setId: h.setId,
  versionNumber: h.versionNumber,
  title: h.title,
  code: h.code,
  ins: h.recordTarget.ins,
  body: h.body,
});

interface Case {
  message: string;
  /** The .XML beside the message that each document (in OBX order) must match; null: see `mismatch`. */
  beside: (string | null)[];
  kinds: ('nonXMLBody' | 'structuredBody')[];
}

const cases: Case[] = [
  {
    message: `${V20}/MDM/Transmission initiale MDM/message_MDM_CR_Radio_INIT_N1_Base64.er7`,
    beside: ['CR_Radio_CDAN1_v1.XML'],
    kinds: ['nonXMLBody'],
  },
  {
    message: `${V20}/ORU/Remplacement ORU/message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7`,
    beside: ['CR_Bio_CDA_Niv1_v2.XML', 'CR_Bio_CDA_Niv3_v2.XML'],
    kinds: ['nonXMLBody', 'structuredBody'],
  },
  {
    message: `${V20}/ORU/Suppression ORU/message_ORU_CR_Bio_DEL_N1_Base64_N3_Base64.er7`,
    beside: ['CR_Bio_CDA_Niv1_v2.XML', 'CR_Bio_CDA_Niv3_v2.XML'],
    kinds: ['nonXMLBody', 'structuredBody'],
  },
  // V2.1 ORU: the messages still carry the V2.0 documents (patient 277076322082910) while the .XML beside them
  // were updated (patient 279035121518989, other ids): only the document type can be compared.
  {
    message: `${V21}/ORU/Remplacement ORU/message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7`,
    beside: [null, null],
    kinds: ['nonXMLBody', 'structuredBody'],
  },
  {
    message: `${V21}/ORU/Suppression ORU/message_ORU_CR_Bio_DEL_N1_Base64_N3_Base64.er7`,
    beside: [null, null],
    kinds: ['nonXMLBody', 'structuredBody'],
  },
  {
    message: `${VAGUE2}/MDM/Transmission initiale MDM/message_MDM_CR_Radio_INIT_N1_Base64.er7`,
    beside: ['CR_Radio_CDAN1_v1.XML'],
    kinds: ['nonXMLBody'],
  },
  // Vague 2 RPLC / DEL MDM are not named _Base64 but carry the real CDA (base64 without its '=' padding).
  {
    message: `${VAGUE2}/MDM/Remplacement MDM/message_MDM_CR_Radio_RPLC_N1.er7`,
    beside: ['CR_Radio_CDAN1_v2.XML'],
    kinds: ['nonXMLBody'],
  },
  {
    message: `${VAGUE2}/MDM/Suppression MDM/message_MDM_CR_Radio_DEL_N1.er7`,
    beside: ['CR_Radio_CDAN1_v2.XML'],
    kinds: ['nonXMLBody'],
  },
  {
    message: `${VAGUE2}/ORU/Remplacement ORU/message_ORU_CR_Bio_RPLC_N3_SEGUR.hl7`,
    beside: ['SEGUR_CR_Bio_CDA_Niv3_v2.xml'],
    kinds: ['structuredBody'],
  },
  // Vague 2 INIT: the .XML beside has another id (…1.12 instead of …1.9); DEL: the message carries an N1
  // (the V2.0 one) while the file beside is the N3 v2.
  {
    message: `${VAGUE2}/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N3_SEGUR.hl7`,
    beside: [null],
    kinds: ['structuredBody'],
  },
  {
    message: `${VAGUE2}/ORU/Suppression ORU/message_ORU_CR_Bio_DEL_N3_SEGUR.hl7`,
    beside: [null],
    kinds: ['nonXMLBody'],
  },
];

describe('extractDocuments on the ANS examples carrying a real CDA', () => {
  it.each(cases)('$message', (c) => {
    const docs = extractDocuments(message(c.message));
    expect(docs.map((d) => d.obx)).toEqual(c.kinds.map((_, i) => i + 1));
    const dir = c.message.slice(0, c.message.lastIndexOf('/'));
    docs.forEach((doc, i) => {
      expect(doc.mediaType).toBe('text/xml');
      expect(doc.encoding).toBe('Base64');
      expect(doc.typeCode.system).toBe('LN');
      const h = readCdaHeader(doc.bytes);
      expect(h.body.kind).toBe(c.kinds[i]);
      expect(h.code.code).toBe(doc.typeCode.code);
      const beside = c.beside[i];
      if (beside) {
        const ref = file(`${dir}/${beside}`);
        expect(identity(h)).toEqual(identity(readCdaHeader(ref)));
        // Same document up to line ends and a final newline.
        const norm = (b: Buffer) =>
          b
            .toString('utf8')
            .replace(/^\uFEFF/, '')
            .replace(/\r\n/g, '\n')
            .trimEnd();
        if (c.message.includes('SEGUR')) expect(norm(doc.bytes)).toBe(norm(ref));
      }
    });
  });

  it('reads OBX-3 of the document', () => {
    const [doc] = extractDocuments(
      message(`${V20}/MDM/Transmission initiale MDM/message_MDM_CR_Radio_INIT_N1_Base64.er7`),
    );
    expect(doc!.typeCode).toEqual({ code: '18748-4', label: "CR d'imagerie médicale", system: 'LN' });
  });

  it('skips the MetaDMPMSS flags and mail bodies, and CORPSMAIL_* without coding system (V1.2)', () => {
    const docs = extractDocuments(message('Volets/TRANS_DOC_CDA_HL7V2/V1.2/MDM/message.hl7'));
    expect(docs.map((d) => d.obx)).toEqual([1]);
  });
});

describe('placeholder variants', () => {
  it.each([
    `${V20}/MDM/Transmission initiale MDM/message_MDM_CR_Radio_INIT_N1.er7`,
    `${VAGUE2}/MDM/Transmission initiale MDM/message_MDM_CR_Radio_INIT_N1.er7`,
    `${V21}/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7`,
  ])('%s: the extracted text is refused as not a CDA', (path) => {
    const docs = extractDocuments(message(path));
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) {
      expect(doc.bytes.toString('utf8')).toBe('Document medcial au format CDA niveau 1');
      let err: unknown;
      try {
        readCdaHeader(doc.bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CdaError);
      expect(['not-xml', 'not-cda']).toContain((err as CdaError).kind);
      expect((err as CdaError).message).toMatch(/not a CDA document/i);
    }
  });
});

describe('extractDocuments on built messages', () => {
  const build = (...obx: string[]) =>
    Hl7Message.parse(
      [
        'MSH|^~\\&|A|B|C|D|202401010000||MDM^T02^MDM_T02|1|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2',
        'EVN||202401010000',
        ...obx,
      ].join('\r'),
    );
  const cda = '<ClinicalDocument xmlns="urn:hl7-org:v3"/>';
  const b64 = Buffer.from(cda).toString('base64');

  it('decodes base64, accepts missing padding, and reads unencoded text with HL7 escapes', () => {
    const unpadded = Buffer.from('<a/>x').toString('base64').replace(/=+$/, '');
    const docs = extractDocuments(
      build(
        `OBX|1|ED|11488-4^CR consultation^LN||^TEXT^XML^Base64^${b64}||||||F`,
        `OBX|2|ED|11488-4^CR consultation^LN||^text^xml^base64^${unpadded}||||||F`,
        'OBX|3|ED|11488-4^CR^LN||^TEXT^XML^^<a b="1\\T\\2"/>||||||F',
        'OBX|4|CE|DESTDMP^Destinataire DMP^MetaDMPMSS||Y^^HL70136||||||F',
        `OBX|5|ED|CORPSMAIL_PS^Corps^MetaDMPMSS||^TEXT^^Base64^${b64}||||||F`,
        'OBX|6|ED|PDF^Pdf^L||^application^PDF^Base64^JVBERi0xLjQ=||||||F',
      ),
    );
    expect(docs.map((d) => [d.obx, d.mediaType, d.encoding])).toEqual([
      [1, 'text/xml', 'Base64'],
      [2, 'text/xml', 'Base64'],
      [3, 'text/xml', 'none'],
      [6, 'application/pdf', 'Base64'],
    ]);
    expect(docs[0]!.bytes.toString()).toBe(cda);
    expect(docs[1]!.bytes.toString()).toBe('<a/>x');
    expect(docs[2]!.bytes.toString()).toBe('<a b="1&2"/>');
    expect(docs[3]!.bytes.toString('latin1')).toBe('%PDF-1.4');
  });

  it.each([
    ['a character outside the alphabet', `${b64.slice(0, 8)}!${b64.slice(9)}`],
    ['a truncated value', `${b64}A`.replace(/=/g, '')],
    ['an inner padding', `QQ==${b64}`],
    ['the URL-safe alphabet', 'ab-_'],
  ])('refuses invalid base64: %s', (_, value) => {
    let err: unknown;
    try {
      extractDocuments(
        build('OBX|1|CE|DESTDMP^D^MetaDMPMSS||Y||||||F', `OBX|2|ED|11488-4^CR^LN||^TEXT^XML^Base64^${value}||||||F`),
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DocumentError);
    expect((err as DocumentError).location).toEqual({ segment: 'OBX', sequence: 2, field: 5, component: 5 });
    expect((err as DocumentError).message).toMatch(/OBX\[2\].*base64/);
  });

  it('refuses an unsupported media type or encoding, naming the component', () => {
    const at = (obx: string) => {
      try {
        extractDocuments(build(obx));
      } catch (e) {
        return (e as DocumentError).location;
      }
      return undefined;
    };
    expect(at('OBX|1|ED|X^Y^LN||^image^JPEG^Base64^AAAA||||||F')).toEqual({
      segment: 'OBX',
      sequence: 1,
      field: 5,
      component: 3,
    });
    expect(at('OBX|1|ED|X^Y^LN||^TEXT^XML^Hex^414243||||||F')).toEqual({
      segment: 'OBX',
      sequence: 1,
      field: 5,
      component: 4,
    });
    expect(at('OBX|1|ED|X^Y^LN||^TEXT^XML^Base64^||||||F')).toEqual({
      segment: 'OBX',
      sequence: 1,
      field: 5,
      component: 5,
    });
  });

  // How fast: `npm run bench` (scenario parsers). The 60 s limit only catches an extraction gone quadratic.
  it('extracts a 20 MB document', () => {
    const big = Buffer.alloc(20 * 1024 * 1024, 'x');
    const msg = build(`OBX|1|ED|11488-4^CR^LN||^TEXT^XML^Base64^${big.toString('base64')}||||||F`);
    const [doc] = extractDocuments(msg);
    expect(doc!.bytes.equals(big)).toBe(true);
  }, 60_000);
});
