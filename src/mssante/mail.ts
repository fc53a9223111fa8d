/**
 * The MSSanté mails of one transmission request (Flow A): what to send, to whom, with which headers and
 * attachments. Pure: sending them is delivery.ts's job.
 *
 * Sources (see each rule below):
 * - volet "Transmission de document(s) CDA en HL7v2": mapping-mss.md (From, Reply-To, To, X-MSS-MES,
 *   body), regles-gestion-mssante.md (the only valid flag combinations), exemples.md and
 *   profils-messages.md (replacement / deletion: extra metadata `action`, default body);
 * - Référentiel socle MSSanté #2, as the PFI brief and the volet "Transmission au LPS d'un document CDA
 *   provenant d'un courriel MSSanté" (struct-email-standard.md) quote it: the subject
 *   `XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>`, the headers X-MSS-CODECDA, X-MSS-INS,
 *   X-MSS-NIL (ECO.2.4.x), the attachments IHE_XDM.ZIP and the PDF.
 */
import type { Submission } from '../request/submission.js';
import type { Hl7Message } from '../hl7v2/message.js';
import { isInsOid } from '../identity/ins.js';
import { readTraits, repetitions } from '../identity/pid.js';
import { buildXdm, type XdmDocument } from '../xdm/build.js';
import { PfiError } from '../errors.js';
import { xmlReader } from '../xml/read.js';

export type { XdmDocument } from '../xdm/build.js';

export interface MssMail {
  /** 'ps' (professionals) or 'patient' */
  audience: 'ps' | 'patient';
  from: string;
  to: string[];
  replyTo?: string;
  subject: string;
  text: string;
  /**
   * X-MSS-CODECDA, X-MSS-INS, X-MSS-NIL, X-MSS-MES (patient, when noReply), Disposition-Notification-To
   * (when acks.reading)
   */
  headers: Record<string, string>;
  /** IHE_XDM.ZIP (application/zip), then the PDF when there is one */
  attachments: { filename: string; contentType: string; content: Buffer }[];
}

export interface MailPatient {
  /** Birth name (PID-5 with name type L). */
  family: string;
  /** First given name (PID-5.2 of the same repetition). */
  given: string;
  /** PID-7, YYYYMMDD[...]. */
  birthDate: string;
  /** PID-32 says QUAL. */
  insQualified: boolean;
}

export interface MailInput {
  submission: Submission;
  /** The CDA bytes of each document, same order as submission.documents. */
  documents: XdmDocument[];
  patient: MailPatient;
  /** The channel's application mailbox (BAL applicative). */
  from: string;
  /** Product reference for X-MSS-NIL (configuration). */
  nil: string;
  defaultBody: { ps: string; patient: string };
  now?: Date;
  /** The application named in README.TXT of the archive (default `pfi-engine`). */
  softwareName?: string;
}

/** The routes of a request cannot be served by MSSanté as they stand; `rule` names the reason. */
export class MailError extends PfiError {
  override name = 'MailError';
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super('mssante-request', message);
  }
}

/** The message part of nodemailer's options for a mail (the envelope and ids are the sender's business). */
export function mailOptions(mail: MssMail) {
  return {
    from: mail.from,
    to: mail.to,
    ...(mail.replyTo ? { replyTo: mail.replyTo } : {}),
    subject: mail.subject,
    text: mail.text,
    headers: mail.headers,
    attachments: mail.attachments,
  };
}

export const XDM_ATTACHMENT = 'IHE_XDM.ZIP';
export const SUBJECT_PREFIX = 'XDM/1.0/DDM+';

/** Mailbox syntax check only (local@domain.tld, no spaces or list separators): PRT-15.4 is free text. */
const ADDRESS = /^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$/;

/**
 * The identity the subject needs, from PID: the birth name and first given name of the PID-5
 * repetition with name type L (readTraits: a lone untyped name counts as the birth name), PID-7, and
 * whether any PID-32 repetition says QUAL.
 */
export function patientOf(msg: Hl7Message): MailPatient {
  const pid = msg.segment('PID');
  if (!pid) return { family: '', given: '', birthDate: '', insQualified: false };
  const t = readTraits(msg, pid);
  let insQualified = false;
  for (let r = 1; r <= repetitions(msg, pid, 32); r++) if (msg.get(`PID-32[${r}]`) === 'QUAL') insQualified = true;
  return { family: t.birthName ?? '', given: t.firstGivenName ?? '', birthDate: t.birthDate ?? '', insQualified };
}

/**
 * One mail per audience: the professionals (all PRT RCT addresses in To) and the patient (Mon espace
 * santé: the patient's own mailbox, with X-MSS-MES when asked). Nothing to send: an empty list.
 */
export function buildMails(input: MailInput): MssMail[] {
  const { submission: sub, documents, patient } = input;
  const { routes, flags } = sub;
  if (!routes.mssantePS && !routes.mssantePatient && !flags.DESTMSSANTEPS && !flags.DESTMSSANTEPAT) return [];

  // regles-gestion-mssante.md: the ingest refuses other combinations; checked again because a
  // document hidden from a reader must never reach that reader by mail.
  if (routes.mssantePS && flags.MASQUE_PS) {
    throw new MailError(
      'regles-gestion-mssante',
      'DESTMSSANTEPS=Y with MASQUE_PS=Y: a document hidden from professionals is not sent to them',
    );
  }
  if (routes.mssantePatient && flags.INVISIBLE_PATIENT) {
    throw new MailError(
      'regles-gestion-mssante',
      'DESTMSSANTEPAT=Y with INVISIBLE_PATIENT=Y: a document invisible to the patient is not sent to the patient',
    );
  }
  if (flags.DESTMSSANTEPS && !routes.mssantePS?.recipients.length) {
    throw new MailError(
      'DESTMSSANTEPS-PRT-RCT',
      'DESTMSSANTEPS=Y but the request names no professional recipient ' +
        '(PRT with PRT-4 = RCT and an address in PRT-15.4)',
    );
  }
  if (flags.DESTMSSANTEPAT && !routes.mssantePatient) {
    throw new MailError(
      'DESTMSSANTEPAT-address',
      'DESTMSSANTEPAT=Y but the patient has no MSSanté address: no PRT RCT at @patient.mssante.fr and no INS in PID-3',
    );
  }
  for (const a of [
    ...(routes.mssantePS?.recipients ?? []),
    routes.mssantePS?.replyTo,
    routes.mssantePatient?.address,
    input.from,
  ]) {
    if (a !== undefined && !ADDRESS.test(a)) throw new MailError('MSS-address', `'${a}' is not an e-mail address`);
  }
  if (!input.nil.trim())
    throw new MailError('X-MSS-NIL', 'no product reference configured for X-MSS-NIL (required on every MSSanté mail)');
  checkDocuments(sub, documents);
  // Ref#2 (as quoted by the volets): every part of the subject is required but the birth date.
  if (!patient.family.trim() || !patient.given.trim()) {
    throw new MailError(
      'MSS-subject',
      "the subject needs the patient's birth name and first given name (PID-5 with name type L)",
    );
  }

  const subject = subjectOf(documents, patient);
  const entries = documents.map((d) => d.entry);
  const common: Record<string, string> = {
    // One code per document, in order, comma-separated (Ref#2 ECO.2.4.1).
    'X-MSS-CODECDA': entries.map((e) => e.typeCode.code).join(','),
    // O only when the identity is qualified and the archive identifies the patient by that INS.
    'X-MSS-INS': patient.insQualified && entries.every((e) => isInsOid(e.patientId.authority)) ? 'O' : 'N',
    'X-MSS-NIL': input.nil.trim(),
  };
  // The sender's application mailbox asks for the read receipts (MDN, RFC 8098) that become ZAM^Z03.
  if (routes.acks.reading) common['Disposition-Notification-To'] = input.from;

  const action = sub.event === 'replace' ? 'C' : sub.event === 'delete' ? 'D' : undefined;
  const zip = buildXdm(sub.submissionSet, documents, {
    sender: input.from,
    softwareName: input.softwareName ?? 'pfi-engine',
    ...(input.now ? { now: input.now } : {}),
    ...(action ? { action } : {}),
  });
  const attachments: MssMail['attachments'] = [
    { filename: XDM_ATTACHMENT, contentType: 'application/zip', content: zip },
  ];
  const pdf = pdfOfDocuments(documents);
  if (pdf)
    attachments.push({ filename: pdfName(pdf.entry, patient), contentType: 'application/pdf', content: pdf.bytes });

  const mails: MssMail[] = [];
  if (routes.mssantePS) {
    mails.push({
      audience: 'ps',
      from: input.from,
      to: [...routes.mssantePS.recipients],
      ...(routes.mssantePS.replyTo ? { replyTo: routes.mssantePS.replyTo } : {}),
      subject,
      text: bodyOf(routes.mssantePS.body, input.defaultBody.ps, sub.event),
      headers: { ...common },
      attachments: [...attachments],
    });
  }
  if (routes.mssantePatient) {
    mails.push({
      audience: 'patient',
      from: input.from,
      to: [routes.mssantePatient.address],
      subject,
      text: bodyOf(routes.mssantePatient.body, input.defaultBody.patient, sub.event),
      // mapping-mss.md: "FIN", three capitals, when the patient must not be able to answer.
      headers: { ...common, ...(routes.mssantePatient.noReply ? { 'X-MSS-MES': 'FIN' } : {}) },
      attachments: [...attachments],
    });
  }
  return mails;
}

function checkDocuments(sub: Submission, documents: XdmDocument[]): void {
  if (documents.length === 0) throw new MailError('MSS-documents', 'the request carries no document to send');
  if (documents.length !== sub.documents.length) {
    throw new MailError(
      'MSS-documents',
      `${documents.length} document(s) given for the ${sub.documents.length} of the submission`,
    );
  }
  documents.forEach((d, i) => {
    if (d.entry.uniqueId !== sub.documents[i]!.entry.uniqueId) {
      throw new MailError(
        'MSS-documents',
        `document ${i + 1} is ${d.entry.uniqueId}, the submission's is ${sub.documents[i]!.entry.uniqueId}`,
      );
    }
  });
}

/**
 * `XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>`: the libellé is the document's title (an
 * ORU's N1 and N3 are the same content: the first one's), NOM the birth name in capitals, the birth date
 * DD/MM/YYYY, left out when PID-7 has none (the one optional part).
 */
export function subjectOf(documents: XdmDocument[], patient: MailPatient): string {
  const first = documents[0]!.entry;
  const libelle = first.title || first.typeCode.display || first.typeCode.code;
  const m = /^(\d{4})(\d{2})(\d{2})/.exec(patient.birthDate);
  const parts = [libelle, patient.family.toLocaleUpperCase('fr-FR'), patient.given, m ? `${m[3]}/${m[2]}/${m[1]}` : ''];
  // A header is one line: no CR/LF from a title, no doubled spaces.
  return (
    SUBJECT_PREFIX +
    parts
      .map((p) => p.replace(/\s+/g, ' ').trim())
      .filter(Boolean)
      .join(' ')
  );
}

/**
 * The CREATEUR's CORPSMAIL_* text when it sent one; otherwise the channel's default, which for a
 * replacement or a deletion must say so (profils-messages.md: "A défaut, dans le cadre d'une
 * suppression ou d'un remplacement de document, le GESTIONNAIRE renseigne un corps de mail par défaut").
 */
function bodyOf(given: string | undefined, fallback: string, event: Submission['event']): string {
  if (given !== undefined && given.trim() !== '') return given;
  if (event === 'replace') return `Ce document annule et remplace la version transmise précédemment.\n\n${fallback}`;
  const cancelled = 'Le document ci-joint, transmis précédemment, est annulé par son émetteur';
  if (event === 'delete') return `${cancelled} : merci de ne plus en tenir compte.\n\n${fallback}`;
  return fallback;
}

/**
 * One PDF per mail: an N1's own PDF when one of the documents is an N1 (Ref#2 ECO.2.1.5: the PDF
 * identical to the one the N1 wraps), else the PDF copy an N3 carries. An ORU with the N1 and the N3 of
 * the same result thus gives one PDF, the N1's.
 */
function pdfOfDocuments(documents: XdmDocument[]): { entry: XdmDocument['entry']; bytes: Buffer } | undefined {
  const found = documents.map((d) => ({ entry: d.entry, pdf: findPdf(d.bytes) }));
  const pick = found.find((f) => f.pdf?.from === 'N1') ?? found.find((f) => f.pdf);
  return pick?.pdf ? { entry: pick.entry, bytes: pick.pdf.bytes } : undefined;
}

/**
 * `<date de l'acte>_<type de document>_<NOM>_<prénom>.pdf` (the form of the volets' examples,
 * `20220531_CR_d_imagerie_medicale_CORSE_FIGATELLIX.pdf`): ASCII letters, digits and `_` only, so that
 * no mail client mangles it.
 */
function pdfName(entry: XdmDocument['entry'], patient: MailPatient): string {
  const ascii = (s: string) =>
    s
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/[^A-Za-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '');
  const date = (entry.serviceStartTime ?? entry.creationTime ?? '').slice(0, 8);
  const parts = [
    date,
    ascii(entry.typeCode.display ?? entry.typeCode.code),
    ascii(patient.family).toUpperCase(),
    ascii(patient.given),
  ];
  return `${parts.filter(Boolean).join('_') || 'document'}.pdf`;
}

// ---------------------------------------------------------------------------------------------------
// The PDF inside a CDA

/** CI-SIS FR-Document-attache (an attached document of an N3) and the LOINC code of a copy of the document. */
const TEMPLATE_DOCUMENT_ATTACHE = '1.2.250.1.213.1.1.3.18';
const LOINC_COPIE_DU_DOCUMENT = '55108-5';

type XmlNode = Record<string, unknown>;

// Prefixes dropped: any prefix bound to urn:hl7-org:v3 (c:ClinicalDocument...) reads the same.
const read = xmlReader();

const list = (v: unknown): XmlNode[] =>
  (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]).filter(
    (x): x is XmlNode => typeof x === 'object' && x !== null,
  );
const attr = (n: XmlNode | undefined, name: string): string | undefined => {
  const v = n?.[`@${name}`];
  return typeof v === 'string' ? v : undefined;
};

/**
 * The PDF to attach: the N1's nonXMLBody (base64 application/pdf) of a CDA, or the PDF of an N3's component
 * when there is one; undefined otherwise.
 */
export function pdfOf(cda: Buffer): Buffer | undefined {
  return findPdf(cda)?.bytes;
}

function findPdf(cda: Buffer): { from: 'N1' | 'N3'; bytes: Buffer } | undefined {
  let doc: XmlNode;
  try {
    doc = read(cda.toString('utf8').replace(/^\uFEFF/, '')) as XmlNode;
  } catch {
    return undefined;
  }
  const root = findElement(doc, 'ClinicalDocument');
  if (!root) return undefined;
  for (const component of list(root['component'])) {
    // N1 (IHE XDS-SD / CI-SIS): ClinicalDocument/component/nonXMLBody/text, inline base64.
    for (const body of list(component['nonXMLBody'])) {
      const pdf = pdfValue(list(body['text'])[0]);
      if (pdf) return { from: 'N1', bytes: pdf };
    }
    // N3: an FR-Document-attache entry whose type is "Copie du document", with its observationMedia.
    for (const body of list(component['structuredBody'])) {
      for (const organizer of descendants(body, 'organizer')) {
        if (!list(organizer['templateId']).some((t) => attr(t, 'root') === TEMPLATE_DOCUMENT_ATTACHE)) continue;
        const parts = list(organizer['component']);
        const isCopy = parts.some((c) =>
          list(c['observation']).some((o) => list(o['value']).some((v) => attr(v, 'code') === LOINC_COPIE_DU_DOCUMENT)),
        );
        if (!isCopy) continue;
        for (const c of parts) {
          for (const media of list(c['observationMedia'])) {
            const pdf = pdfValue(list(media['value'])[0]);
            if (pdf) return { from: 'N3', bytes: pdf };
          }
        }
      }
    }
  }
  return undefined;
}

/** An inline base64 application/pdf value (ED), decoded; only if it really is a PDF (%PDF-). */
function pdfValue(n: XmlNode | undefined): Buffer | undefined {
  if (!n || (attr(n, 'mediaType') ?? '').toLowerCase() !== 'application/pdf' || attr(n, 'representation') !== 'B64')
    return undefined;
  const text = n['#text'];
  if (typeof text !== 'string' || !text) return undefined;
  // Entities are not expanded (processEntities: false): a character reference in base64 can only be
  // white space (&#13; &#xA;...) and must not feed its digits to the decoder.
  const bytes = Buffer.from(text.replace(/&#x?[0-9a-f]+;/gi, ''), 'base64');
  return bytes.subarray(0, 5).toString('latin1') === '%PDF-' ? bytes : undefined;
}

/** The first element of that name, depth first (the CI-SIS auto-presentable form nests the CDA). */
function findElement(n: XmlNode, name: string): XmlNode | undefined {
  for (const [k, v] of Object.entries(n)) {
    if (k.startsWith('@') || k === '#text') continue;
    for (const child of list(v)) {
      if (k === name) return child;
      const found = findElement(child, name);
      if (found) return found;
    }
  }
  return undefined;
}

function descendants(n: XmlNode, name: string, out: XmlNode[] = []): XmlNode[] {
  for (const [k, v] of Object.entries(n)) {
    if (k.startsWith('@') || k === '#text') continue;
    for (const child of list(v)) {
      if (k === name) out.push(child);
      descendants(child, name, out);
    }
  }
  return out;
}
