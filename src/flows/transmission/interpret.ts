import { DocumentError, extractDocuments } from '../../cda/extract.js';
import { CdaError, readCdaHeader, type CdaHeader } from '../../cda/header.js';
import type { ErrorCode, ErrorLocation } from '../../hl7v2/errors.js';
import type { Hl7Message } from '../../hl7v2/message.js';
import { MetadataError, type SubmissionSet } from '../../xds/model.js';
import type { Terminology } from '../../xds/terminology.js';
import type { TransmissionMapping } from './mapping.js';
import { documentEntry, patientIds, submissionSet, xdsUniqueId } from './metadata.js';
import { n1FromMessage } from './pdf.js';
import { isPatientAddress, patientAddress, recipients, replyTo } from '../../request/participants.js';
import type { Routes, Submission, TransmissionFlags } from '../../request/submission.js';
import { readFlags } from './validate.js';
import { PfiError } from '../../errors.js';

export type { Routes, Submission };

/** A metadata field the document lacks: the request is refused, OBX-5 of that document named. */
function metadataRefusal(e: unknown, obx: number): unknown {
  if (!(e instanceof MetadataError)) return e;
  const where = { segment: 'OBX', sequence: obx, field: 5 };
  return new InterpretationError(`XDS-${e.field}`, 207, `OBX ${obx}: ${e.message}`, where);
}

/** A request the volet refuses once its document is read: reported in the journal and by ZAM. */
export class InterpretationError extends PfiError {
  constructor(
    readonly rule: string,
    readonly code: ErrorCode,
    message: string,
    readonly location?: ErrorLocation,
  ) {
    super('request', message);
  }
}

export interface InterpretContext {
  terminology: Terminology;
  mapping: TransmissionMapping;
  now?: Date;
}

/**
 * Reads a transmission request (MDM^T02/T10/T04 or ORU^R01) that passed the ingest checks: its
 * documents, their CDA headers, the checks that need them, the XDS metadata, the routes.
 */
export function interpret(msg: Hl7Message, ctx: InterpretContext): Submission {
  const { flags } = readFlags(msg);
  const base = { msg, flags, terminology: ctx.terminology, mapping: ctx.mapping, now: ctx.now };
  let docs;
  try {
    docs = extractDocuments(msg);
  } catch (e) {
    if (e instanceof DocumentError) throw new InterpretationError('OBX-5-document', 102, e.message, e.location);
    throw e;
  }
  if (!docs.length)
    throw new InterpretationError('OBX-5-document', 101, 'the request carries no document (OBX with OBX-2 = ED)', {
      segment: 'OBX',
    });

  const ids = patientIds(msg);
  const documents = docs.map((d) => {
    let header: CdaHeader;
    let bytes = d.bytes;
    try {
      if (d.mediaType === 'application/pdf') bytes = n1FromMessage(msg, d.obx, d.bytes, ctx.mapping);
    } catch (e) {
      throw metadataRefusal(e, d.obx);
    }
    try {
      header = readCdaHeader(bytes);
    } catch (e) {
      if (e instanceof CdaError)
        throw new InterpretationError('OBX-5-cda', 102, `OBX ${d.obx}: ${e.message}`, {
          segment: 'OBX',
          sequence: d.obx,
          field: 5,
        });
      throw e;
    }
    checkPatient(ids, header, d.obx);
    if (msg.get('MSH-9.1') === 'MDM') checkDocumentId(msg, header);
    try {
      const entry = documentEntry(base, header, bytes);
      const parent = header.replaces[0];
      return {
        obx: d.obx,
        mediaType: d.mediaType,
        entry,
        ...(parent ? { replaces: xdsUniqueId(parent) } : {}),
        ...(bytes !== d.bytes ? { generatedCda: bytes.toString('base64') } : {}),
      };
    } catch (e) {
      throw metadataRefusal(e, d.obx);
    }
  });

  let set: SubmissionSet;
  try {
    set = submissionSet(base, documents[0]!.entry.patientId);
  } catch (e) {
    if (e instanceof MetadataError) throw new InterpretationError(`XDS-${e.field}`, 207, e.message);
    throw e;
  }
  return {
    event: eventOf(msg),
    replaces: msg.get('TXA-13.1') || undefined,
    documents,
    submissionSet: set,
    flags,
    routes: routesOf(msg, flags, ids.ins?.id),
  };
}

/**
 * PID-3 against the CDA's recordTarget/patientRole/id list (profils-messages, PID): every PID-3
 * identifier must be in the document, and the INS must be the same one. The document may list more
 * (the ANS examples carry the IPP in the CDA only).
 */
function checkPatient(ids: ReturnType<typeof patientIds>, header: CdaHeader, obx: number): void {
  const cda = new Set(header.recordTarget.ids.map((i) => `${i.extension ?? ''}|${i.root}`));
  const missing = ids.all.filter((i) => !cda.has(`${i.id}|${i.authority}`));
  const cdaIns = header.recordTarget.ins;
  const insDiffers =
    !!cdaIns !== !!ids.ins ||
    (cdaIns && ids.ins && (cdaIns.matricule !== ids.ins.id || cdaIns.oid !== ids.ins.authority));
  if (missing.length || insDiffers) {
    const pid = ids.all.map((i) => `${i.id}@${i.authority}`).join(', ') || '(none)';
    const doc = header.recordTarget.ids.map((i) => `${i.extension ?? ''}@${i.root}`).join(', ') || '(none)';
    throw new InterpretationError(
      'PID-3-equals-recordTarget',
      207,
      `PID-3 (${pid}) does not match the recordTarget ids of the CDA in OBX ${obx} (${doc})`,
      { segment: 'PID', sequence: 1, field: 3 },
    );
  }
}

/**
 * TXA-12 names the document: the CDA id's extension with its root in TXA-12.3, or the id's root
 * when it has no extension; profile 2.0 writes root and extension as one dotted string.
 */
function checkDocumentId(msg: Hl7Message, header: CdaHeader): void {
  const txa12 = msg.get('TXA-12.1') ?? '';
  const root = msg.get('TXA-12.3') ?? '';
  const id = header.id;
  const ok = id.extension
    ? (txa12 === id.extension && (!root || root === id.root)) || txa12 === `${id.root}.${id.extension}`
    : txa12 === id.root;
  if (!ok) {
    const cda = id.extension ? `${id.extension} (root ${id.root})` : id.root;
    throw new InterpretationError(
      'TXA-12-equals-ClinicalDocument-id',
      207,
      `TXA-12 "${txa12}" is not the CDA's id ${cda}`,
      { segment: 'TXA', sequence: 1, field: 12 },
    );
  }
}

function eventOf(msg: Hl7Message): Submission['event'] {
  const event = msg.get('MSH-9.2');
  if (event === 'T10') return 'replace';
  if (event === 'T04') return 'delete';
  if (event === 'T02') return 'new';
  // ORU: the document OBX's result status.
  const status = msg.get('OBX-11');
  return status === 'C' ? 'replace' : status === 'D' ? 'delete' : 'new';
}

function routesOf(msg: Hl7Message, flags: TransmissionFlags, ins: string | undefined): Routes {
  const professionals = recipients(msg)
    .map((p) => p.address!)
    .filter((a) => !isPatientAddress(a));
  const patient = patientAddress(msg, ins);
  const routes: Routes = {
    dmp: !!flags.DESTDMP,
    acks: { reception: !!flags.ACK_RECEPTION, reading: !!flags.ACK_LECTURE_MSS },
  };
  if (flags.DESTMSSANTEPS)
    routes.mssantePS = { recipients: professionals, replyTo: replyTo(msg), body: mailBody(msg, 'CORPSMAIL_PS') };
  if (flags.DESTMSSANTEPAT && patient) {
    routes.mssantePatient = { address: patient, body: mailBody(msg, 'CORPSMAIL_PATIENT'), noReply: noReplyAsked(msg) };
  }
  return routes;
}

/** CORPSMAIL_* OBX: the mail body, base64 in OBX-5.5 (or plain text). */
function mailBody(msg: Hl7Message, name: string): string | undefined {
  const i = msg.segmentsNamed('OBX').findIndex((_, k) => msg.get(`OBX[${k + 1}]-3.1`) === name);
  if (i < 0) return undefined;
  const value = msg.get(`OBX[${i + 1}]-5.5`) ?? '';
  return msg.get(`OBX[${i + 1}]-5.4`)?.toLowerCase() === 'base64'
    ? Buffer.from(value, 'base64').toString('utf8')
    : value;
}

/** NTE-4 on the DESTMSSANTEPAT OBX asks that the patient cannot answer (X-MSS-MES: FIN). */
function noReplyAsked(msg: Hl7Message): boolean {
  let inPatientObx = false;
  for (const s of msg.segments) {
    if (s.name === 'OBX') inPatientObx = (s.field(3) ?? '').startsWith('DESTMSSANTEPAT');
    else if (s.name === 'NTE' && inPatientObx && (s.field(4) ?? '') !== '') return true;
  }
  return false;
}
