import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { unzipSync } from 'fflate';
import MailComposer from 'nodemailer/lib/mail-composer';
import { describe, expect, test } from 'vitest';
import { extractDocuments } from '../../src/cda/extract.js';
import { splitMessages } from '../../src/cli/split.js';
import { interpret, type Submission } from '../../src/flows/transmission/interpret.js';
import { loadTransmissionMapping } from '../../src/flows/transmission/mapping.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import {
  buildMails,
  MailError,
  mailOptions,
  patientOf,
  pdfOf,
  type MailInput,
  type MssMail,
} from '../../src/mssante/mail.js';
import type { XdmDocument } from '../../src/xdm/build.js';
import { Terminology } from '../../src/xds/terminology.js';
import { packageRoot } from '../../src/util/paths.js';

const ROOT = packageRoot();
const ANS = join(ROOT, '..', 'shared', 'reference', 'ansforge');
const V2 = join(ANS, 'hl7v2-exemples', 'Vague 2', 'Trans_Doc-CDA-HL7V2', 'TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1');
const V20 = join(ANS, 'hl7v2-exemples', 'Volets', 'TRANS_DOC_CDA_HL7V2', 'V2.0');
const MDM_INIT = join(V2, 'MDM', 'Transmission initiale MDM', 'message_MDM_CR_Radio_INIT_N1_Base64.er7');
const MDM_RPLC = join(V2, 'MDM', 'Remplacement MDM', 'message_MDM_CR_Radio_RPLC_N1.er7');
const ORU_SEGUR = join(V2, 'ORU', 'Transmission initiale ORU', 'message_ORU_CR_Bio_INIT_N3_SEGUR.hl7');
const ORU_N1_N3 = join(V20, 'ORU', 'Remplacement ORU', 'message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7');
const terminology = Terminology.load(join(ROOT, 'mappings', 'terminology.json'));
const mapping = loadTransmissionMapping(join(ROOT, 'mappings', 'transmission.yaml'));

const FROM = 'pfi.transmission@hopital.test-ci-sis.mssante.fr';
const NIL = 'NIL-PFI-0001';
const DEFAULT_BODY = {
  ps: 'Bonjour,\nVeuillez trouver ci-joint un document.',
  patient: 'Bonjour,\nVoici un document vous concernant.',
};

/** An ANS example (optionally edited as ER7 text) read as the flow reads it: submission, documents, patient. */
function input(file: string, edit: (er7: string) => string = (s) => s): MailInput & { msg: Hl7Message } {
  const msg = Hl7Message.parse(edit(splitMessages(readFileSync(file))[0]!.toString('utf8')));
  const submission = interpret(msg, { terminology, mapping });
  const raws = extractDocuments(msg);
  const documents = submission.documents.map((d) => ({
    entry: d.entry,
    bytes: raws.find((r) => r.obx === d.obx)!.bytes,
  }));
  return {
    msg,
    submission,
    documents,
    patient: patientOf(msg),
    from: FROM,
    nil: NIL,
    defaultBody: DEFAULT_BODY,
    now: new Date('2024-03-05T14:07:42Z'),
  };
}

const mailError = (fn: () => unknown): MailError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof MailError) return e;
    throw e;
  }
  throw new Error('no MailError');
};

// ---- RFC 5322 rendering (nodemailer's MailComposer) and a minimal reader of what it wrote

async function render(mail: MssMail): Promise<string> {
  const composer = new MailComposer(mailOptions(mail));
  return (await composer.compile().build()).toString('latin1');
}

/** Header fields of a header block, unfolded; names lower-cased (RFC 5322: case-insensitive). */
function headersOf(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
  }
  return out;
}

/** RFC 2047 encoded words (B and Q, UTF-8) back to text; whitespace between two encoded words drops. */
function decodeWords(s: string): string {
  return s
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ).toString('utf8'),
    );
}

/** The parts of a multipart/mixed message: headers and decoded body. */
function partsOf(raw: string): { headers: Map<string, string>; body: Buffer }[] {
  const [head, ...rest] = raw.split('\r\n\r\n');
  const boundary = /boundary="([^"]+)"/.exec(headersOf(head!).get('content-type') ?? '')![1]!;
  return rest
    .join('\r\n\r\n')
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((p) => {
      const [h, ...b] = p.replace(/^\r\n/, '').split('\r\n\r\n');
      const headers = headersOf(h!);
      const text = b.join('\r\n\r\n').replace(/\r\n$/, '');
      const body =
        headers.get('content-transfer-encoding') === 'base64'
          ? Buffer.from(text, 'base64')
          : Buffer.from(text, 'latin1');
      return { headers, body };
    });
}

// ---- the tests

describe('patientOf: PID-5 (name type L), PID-7, PID-32', () => {
  test('the PAT-TROIS example: birth name, first given name, birth date, identity not qualified (VALI)', () => {
    const { msg } = input(MDM_INIT);
    expect(patientOf(msg)).toEqual({
      family: 'PAT-TROIS',
      given: 'DOMINIQUE',
      birthDate: '19790328',
      insQualified: false,
    });
  });

  test('PID-32 = QUAL (in any repetition) makes the INS qualified; the L repetition wins over a used name', () => {
    const { msg } = input(MDM_INIT, (s) =>
      s
        .replace('PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L', 'DUPONT^Jean^^^^^D~PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L')
        .replace(/\|N\|VALI(\r|$)/m, '|N|QUAL~HOMON$1'),
    );
    expect(patientOf(msg)).toEqual({
      family: 'PAT-TROIS',
      given: 'DOMINIQUE',
      birthDate: '19790328',
      insQualified: true,
    });
  });
});

describe('the PAT-TROIS CR d’imagerie (Vague 2 MDM^T02, N1, DESTMSSANTEPS=Y with one PRT RCT)', () => {
  const inp = input(MDM_INIT);
  const mails = buildMails(inp);
  const mail = mails[0]!;
  const entry = inp.documents[0]!.entry;

  test('one mail, to the professional of the PRT RCT, from the application mailbox', () => {
    expect(mails.map((m) => m.audience)).toEqual(['ps']);
    expect(mail.from).toBe(FROM);
    expect(mail.to).toEqual(['adam.hoda@test-ci-sis.mssante.fr']);
    expect(mail.replyTo).toBeUndefined();
  });

  test('subject XDM/1.0/DDM+<title> <NOM> <prénom> <DD/MM/YYYY>; body from CORPSMAIL_PS', () => {
    expect(mail.subject).toBe(`XDM/1.0/DDM+${entry.title} PAT-TROIS DOMINIQUE 28/03/1979`);
    expect(mail.text).toBe(inp.submission.routes.mssantePS!.body);
    expect(mail.text).toMatch(/^Cher confrère/);
  });

  test('headers: X-MSS-CODECDA the CDA code, X-MSS-INS N (PID-32 VALI), X-MSS-NIL; no read receipt asked', () => {
    expect(mail.headers).toEqual({ 'X-MSS-CODECDA': '18748-4', 'X-MSS-INS': 'N', 'X-MSS-NIL': NIL });
  });

  test('attachments: IHE_XDM.ZIP holding the CDA, then the N1’s PDF', () => {
    expect(mail.attachments.map((a) => [a.filename, a.contentType])).toEqual([
      ['IHE_XDM.ZIP', 'application/zip'],
      [expect.stringMatching(/^\d{8}_CR_d_imagerie_medicale_PAT_TROIS_DOMINIQUE\.pdf$/), 'application/pdf'],
    ]);
    const files = unzipSync(mail.attachments[0]!.content);
    expect(Buffer.from(files['IHE_XDM/SUBSET01/DOC0001.XML']!).equals(inp.documents[0]!.bytes)).toBe(true);
    const cda = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true }).parse(
      readFileSync(join(V2, 'MDM', 'Transmission initiale MDM', 'CR_Radio_CDAN1_v1.XML')),
    );
    const b64 = cda.ClinicalDocument.component.nonXMLBody.text['#text'] as string;
    expect(mail.attachments[1]!.content.equals(Buffer.from(b64, 'base64'))).toBe(true);
    expect(mail.attachments[1]!.content.subarray(0, 5).toString()).toBe('%PDF-');
  });

  test('rendered as RFC 5322 by nodemailer: the headers, the subject (UTF-8), the two attachments', async () => {
    const raw = await render(mail);
    const head = headersOf(raw.split('\r\n\r\n')[0]!);
    expect(head.get('from')).toBe(FROM);
    expect(head.get('to')).toBe('adam.hoda@test-ci-sis.mssante.fr');
    expect(head.get('x-mss-codecda')).toBe('18748-4');
    expect(head.get('x-mss-ins')).toBe('N');
    expect(head.get('x-mss-nil')).toBe(NIL);
    expect(head.has('x-mss-mes')).toBe(false);
    expect(head.has('disposition-notification-to')).toBe(false);
    expect(decodeWords(head.get('subject')!)).toBe(mail.subject);
    const parts = partsOf(raw);
    expect(parts[0]!.headers.get('content-type')).toMatch(/^text\/plain; charset=utf-8/i);
    const zip = parts.find((p) => /application\/zip/.test(p.headers.get('content-type') ?? ''))!;
    expect(zip.headers.get('content-disposition')).toMatch(/attachment; filename="?IHE_XDM\.ZIP"?/);
    expect(zip.body.equals(mail.attachments[0]!.content)).toBe(true);
    const pdf = parts.find((p) => /application\/pdf/.test(p.headers.get('content-type') ?? ''))!;
    expect(pdf.body.equals(mail.attachments[1]!.content)).toBe(true);
  });

  test('deterministic for a given now', () => {
    expect(buildMails(inp)[0]!.attachments[0]!.content.equals(mail.attachments[0]!.content)).toBe(true);
  });

  test('X-MSS-INS is O when the identity is qualified', () => {
    expect(buildMails({ ...inp, patient: { ...inp.patient, insQualified: true } })[0]!.headers['X-MSS-INS']).toBe('O');
  });

  test('a request for MSSanté only, without INS (patientId is the IPP), is never X-MSS-INS O', () => {
    const documents: XdmDocument[] = inp.documents.map((d) => ({
      ...d,
      entry: { ...d.entry, patientId: { id: '405660', authority: '120456789', type: 'PI' } },
    }));
    const sub: Submission = {
      ...inp.submission,
      documents: inp.submission.documents.map((d, i) => ({ ...d, entry: documents[i]!.entry })),
    };
    expect(
      buildMails({ ...inp, submission: sub, documents, patient: { ...inp.patient, insQualified: true } })[0]!.headers[
        'X-MSS-INS'
      ],
    ).toBe('N');
  });

  test('no CORPSMAIL_PS: the default body', () => {
    const sub: Submission = {
      ...inp.submission,
      routes: { ...inp.submission.routes, mssantePS: { recipients: ['adam.hoda@test-ci-sis.mssante.fr'] } },
    };
    expect(buildMails({ ...inp, submission: sub })[0]!.text).toBe(DEFAULT_BODY.ps);
  });

  test('no birth date: the subject leaves it out (the one optional part)', () => {
    expect(buildMails({ ...inp, patient: { ...inp.patient, birthDate: '' } })[0]!.subject).toBe(
      `XDM/1.0/DDM+${entry.title} PAT-TROIS DOMINIQUE`,
    );
  });
});

describe('the Ségur ORU (N3 only): professional and patient, reply-to, both acknowledgements', () => {
  const inp = input(ORU_SEGUR);
  const mails = buildMails(inp);
  const [ps, patient] = mails;

  test('two mails: the professional with Reply-To (PRT REPLY), the patient at @patient.mssante.fr', () => {
    expect(mails.map((m) => m.audience)).toEqual(['ps', 'patient']);
    expect(ps!.to).toEqual(['adam.hoda@test-ci-sis.mssante.fr']);
    expect(ps!.replyTo).toBe('adam.hoda@test-ci-sis.mssante.fr');
    expect(patient!.to).toEqual([inp.submission.routes.mssantePatient!.address]);
    expect(patient!.to[0]).toMatch(/@patient\.mssante\.fr$/);
    expect(patient!.replyTo).toBeUndefined();
    expect(patient!.text).toBe(DEFAULT_BODY.patient); // no CORPSMAIL_PATIENT
    expect(ps!.subject).toBe(patient!.subject);
    expect(ps!.subject).toBe(`XDM/1.0/DDM+${inp.documents[0]!.entry.title} PAT-TROIS DOMINIQUE 28/03/1979`);
  });

  test(
    'ACK_LECTURE_MSS=Y: Disposition-Notification-To the application mailbox, ' +
      'on both mails; no X-MSS-MES without NTE-4',
    () => {
      for (const m of mails) {
        expect(m.headers['Disposition-Notification-To']).toBe(FROM);
        expect(m.headers['X-MSS-CODECDA']).toBe('11502-2');
        expect(m.headers['X-MSS-MES']).toBeUndefined();
      }
    },
  );

  test('the PDF is the N3’s copy of the document (FR-Document-attache, 55108-5)', () => {
    expect(ps!.attachments.map((a) => a.contentType)).toEqual(['application/zip', 'application/pdf']);
    const pdf = pdfOf(inp.documents[0]!.bytes)!;
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    expect(ps!.attachments[1]!.content.equals(pdf)).toBe(true);
  });

  test('NTE-4 on DESTMSSANTEPAT: X-MSS-MES: FIN on the patient mail only, rendered as such', async () => {
    const noReply = input(ORU_SEGUR, (s) => s.replace(/(OBX\|9\|CE\|DESTMSSANTEPAT[^\r]*)/, '$1\rNTE|1|||FIN'));
    expect(noReply.submission.routes.mssantePatient!.noReply).toBe(true);
    const [p, pat] = buildMails(noReply);
    expect(p!.headers['X-MSS-MES']).toBeUndefined();
    expect(pat!.headers['X-MSS-MES']).toBe('FIN');
    const head = headersOf((await render(pat!)).split('\r\n\r\n')[0]!);
    expect(head.get('x-mss-mes')).toBe('FIN');
    expect(head.get('disposition-notification-to')).toBe(FROM);
  });
});

describe('an ORU^R01 with the N1 and the N3 of the same result (V2.0 replacement)', () => {
  const inp = input(ORU_N1_N3);
  const mails = buildMails(inp);

  test('one PDF per mail, the N1’s, even though the N3 carries a copy too', () => {
    const n1 = pdfOf(inp.documents[0]!.bytes)!;
    expect(n1).toBeDefined();
    for (const m of mails) {
      const pdfs = m.attachments.filter((a) => a.contentType === 'application/pdf');
      expect(pdfs).toHaveLength(1);
      expect(pdfs[0]!.content.equals(n1)).toBe(true);
    }
  });

  test('X-MSS-CODECDA: one code per document; the archive holds both documents', () => {
    expect(mails[0]!.headers['X-MSS-CODECDA']).toBe('11502-2,11502-2');
    const files = unzipSync(mails[0]!.attachments[0]!.content);
    expect(Object.keys(files).filter((f) => /DOC000\d\.XML$/.test(f))).toHaveLength(2);
  });

  test(
    'a replacement: action C in METADATA.XML; the patient mail ' +
      '(no CORPSMAIL_PATIENT) says the document replaces the former one',
    () => {
      const metadata = Buffer.from(
        unzipSync(mails[0]!.attachments[0]!.content)['IHE_XDM/SUBSET01/METADATA.XML']!,
      ).toString('utf8');
      expect(metadata.match(/<rim:Slot name="action"><rim:ValueList><rim:Value>C<\/rim:Value>/g)).toHaveLength(2);
      const patient = mails.find((m) => m.audience === 'patient')!;
      expect(patient.text).toMatch(/remplace/);
      expect(patient.text.endsWith(DEFAULT_BODY.patient)).toBe(true);
      expect(mails.find((m) => m.audience === 'ps')!.text).toBe(inp.submission.routes.mssantePS!.body);
    },
  );
});

describe('replacement by MDM^T10 (Vague 2)', () => {
  test('action C on the entry; the CREATEUR’s body as sent', () => {
    const inp = input(MDM_RPLC);
    expect(inp.submission.event).toBe('replace');
    const [mail] = buildMails(inp);
    const metadata = Buffer.from(unzipSync(mail!.attachments[0]!.content)['IHE_XDM/SUBSET01/METADATA.XML']!).toString(
      'utf8',
    );
    expect(metadata).toContain(
      '<rim:Slot name="action"><rim:ValueList><rim:Value>C</rim:Value></rim:ValueList></rim:Slot>',
    );
    expect(mail!.text).toBe(inp.submission.routes.mssantePS!.body);
  });
});

describe('routes that cannot be served', () => {
  const inp = input(MDM_INIT);

  test('DESTMSSANTEPS=Y but no PRT RCT recipient', () => {
    const noRct = input(MDM_INIT, (s) => s.replace(/PRT\|\|UC\|\|RCT[^\r]*\r/, ''));
    expect(noRct.submission.flags.DESTMSSANTEPS).toBe(true);
    const e = mailError(() => buildMails(noRct));
    expect(e.rule).toBe('DESTMSSANTEPS-PRT-RCT');
    expect(e.message).toMatch(/PRT-4 = RCT/);
  });

  test('DESTMSSANTEPAT=Y but no patient address', () => {
    const sub: Submission = {
      ...inp.submission,
      flags: { ...inp.submission.flags, DESTMSSANTEPAT: true, INVISIBLE_PATIENT: false },
    };
    const e = mailError(() => buildMails({ ...inp, submission: sub }));
    expect(e.rule).toBe('DESTMSSANTEPAT-address');
  });

  test(
    'a patient mail for a document invisible to the patient, ' + 'a professional mail for a document hidden from them',
    () => {
      const invisible: Submission = {
        ...inp.submission,
        routes: {
          ...inp.submission.routes,
          mssantePatient: { address: '279035121518989@patient.mssante.fr', noReply: false },
        },
      };
      expect(mailError(() => buildMails({ ...inp, submission: invisible })).rule).toBe('regles-gestion-mssante');
      const masked: Submission = { ...inp.submission, flags: { ...inp.submission.flags, MASQUE_PS: true } };
      expect(mailError(() => buildMails({ ...inp, submission: masked })).rule).toBe('regles-gestion-mssante');
    },
  );

  test('an address that is not one, no product reference, documents that are not the submission’s', () => {
    const bad: Submission = {
      ...inp.submission,
      routes: { ...inp.submission.routes, mssantePS: { recipients: ['adam.hoda at mssante'] } },
    };
    expect(mailError(() => buildMails({ ...inp, submission: bad })).rule).toBe('MSS-address');
    expect(mailError(() => buildMails({ ...inp, nil: ' ' })).rule).toBe('X-MSS-NIL');
    expect(mailError(() => buildMails({ ...inp, documents: [] })).rule).toBe('MSS-documents');
    const other = [{ ...inp.documents[0]!, entry: { ...inp.documents[0]!.entry, uniqueId: '1.2.3' } }];
    expect(mailError(() => buildMails({ ...inp, documents: other })).rule).toBe('MSS-documents');
  });

  test('no birth name: the subject cannot be built', () => {
    expect(mailError(() => buildMails({ ...inp, patient: { ...inp.patient, family: '' } })).rule).toBe('MSS-subject');
  });

  test('nothing for MSSanté: no mail', () => {
    const sub: Submission = {
      ...inp.submission,
      flags: { ...inp.submission.flags, DESTMSSANTEPS: false },
      routes: { dmp: true, acks: { reception: false, reading: false } },
    };
    expect(buildMails({ ...inp, submission: sub })).toEqual([]);
  });
});

describe('pdfOf', () => {
  test('a CDA N3 without a copy of the document, or whose attached documents are other documents: no PDF', () => {
    expect(pdfOf(readFileSync(join(ANS, 'cda-examples', 'AVC-EUNV_2022.01.xml')))).toBeUndefined();
    // The DLU carries attached PDFs (directives anticipées, attestations), none of them a copy of the DLU.
    expect(pdfOf(readFileSync(join(ANS, 'cda-examples', 'IPS-FR_2024.01_DLU.xml')))).toBeUndefined();
  });

  test('an N3 with its copy, an N1: their PDF; not XML: nothing', () => {
    expect(
      pdfOf(readFileSync(join(ANS, 'cda-examples', 'BIO-CR-BIO_2024.01_TSH_1.xml')))!
        .subarray(0, 5)
        .toString(),
    ).toBe('%PDF-');
    expect(
      pdfOf(readFileSync(join(ANS, 'cda-examples', 'IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml')))!
        .subarray(0, 5)
        .toString(),
    ).toBe('%PDF-');
    expect(pdfOf(Buffer.from('not xml <'))).toBeUndefined();
  });

  test('any namespace prefix; character references in the base64 are white space; a non-PDF payload is no PDF', () => {
    const n1 = (b64: string) =>
      Buffer.from(
        '\uFEFF<?xml version="1.0"?><c:ClinicalDocument xmlns:c="urn:hl7-org:v3"><c:component><c:nonXMLBody>' +
          `<c:text mediaType="application/pdf" representation="B64">${b64}</c:text>` +
          '</c:nonXMLBody></c:component></c:ClinicalDocument>',
      );
    const pdf = Buffer.from('%PDF-1.4\n%%EOF\n');
    const b64 = pdf.toString('base64');
    expect(pdfOf(n1(`${b64.slice(0, 8)}&#13;&#xA;${b64.slice(8)}`))).toEqual(pdf);
    expect(pdfOf(n1(Buffer.from('hello').toString('base64')))).toBeUndefined();
  });
});
