/**
 * A strict CONSOMMATEUR (DPI / RIS) of the CI-SIS volet "Transmission au LPS d'un document CDA provenant d'un
 * courriel MSSanté" (IG ansforge/IG-hl7v2-volet-trans-lps-doc-cda-courriel-mss, v1.1.x), for tests and trials of
 * Flow B: an MLLP listener that receives MDM^T02 / MDM^T10 / MDM^T04 (HL7 v2.6), checks them the way the volet
 * says, integrates / replaces / deletes the CDA document in an in-memory store, and answers with the volet's ACK.
 *
 * References below: [profils] = input/pagecontent/profils-messages.md, [codes] = error-codes.md,
 * [evts] = evenements-declenchants.md, [proc] = def-proc-collab.md, [meta] = meta-dmp-mss.md.
 *
 * The ACK ([profils] "Le message d'acquittement HL7v2"):
 * - MSH-9 = ACK^T02^ACK / ACK^T04^ACK / ACK^T10^ACK "selon l'évènement du message initial", MSH-3..6 swapped,
 *   MSH-11 copied (hl7v2/ack.ts buildAck);
 * - MSA-1: AA "le message a été compris et intégré par l'application destinatrice"; AE "le message contient des
 *   erreurs"; AR "le message est rejeté pour une raison circonstancielle. Il peut être réémis plus tard";
 * - ERR-3 "Code erreur HL7 ... table HL7 0357 (nom symbolique : messageErrorCondition)", ERR-4 severity (table 0516),
 *   ERR-5 "Code erreur du traitement applicatif ... table user-defined 0533 (nom symbolique : applicationErrorCode)";
 *   Note 2: "dans le cas où le rejet du message HL7 MDM est dû à un problème applicatif au niveau du CONSOMMATEUR,
 *   le champ ERR-3 sera renseigné avec la valeur « 207 » (Application error) et le champ ERR-5 ... avec une valeur
 *   comprise dans la table applicationErrorCode. Dans le cas où le message MDM est rejeté ... pour une raison
 *   technique, le champ ERR-3 sera renseigné avec une valeur comprise dans la table messageErrorCondition et le champ
 *   ERR-5 ne sera pas renseigné." The volet's example:
 *   `ERR||PID^1^3|207^Application error^messageErrorCondition| E|`
 *   `902^Identifiant de patient inconnu^applicationErrorCode`.
 *   ERR-8 (user message) carries our explanation (never a patient's trait value).
 *
 * Order of the checks: MSH (type, event, version, processing id, required fields, fixed values) → segment
 * sequence → fields the volet constrains → the CDA in OBX-5 → the patient (INS: 903/905, then 902, then 904, as
 * [proc] puts "Le patient est connu du CONSOMMATEUR" first among the pre-conditions) → the document (900: "Le
 * CONSOMMATEUR dispose de la dernière version du document original", then 901) → integration (AA).
 */
import { createHash } from 'node:crypto';
import { DocumentError, extractDocuments } from '../cda/extract.js';
import { CdaError, readCdaHeader, type CdaHeader, type InstanceId } from '../cda/header.js';
import { ackCharset, buildAck } from '../hl7v2/ack.js';
import { encodeString, type Hl7Charset } from '../hl7v2/charset.js';
import { Hl7ParseError, type ErrorLocation } from '../hl7v2/errors.js';
import { escape } from '../hl7v2/escape.js';
import { readMsh, type MshHeader } from '../hl7v2/header.js';
import { Hl7Message, parsePath, STANDARD_DELIMITERS, type Hl7Segment } from '../hl7v2/message.js';
import { checkIns, isInsOid } from '../identity/ins.js';
import { readTraits, repetitions } from '../identity/pid.js';
import { MllpServer, type ConnectionInfo } from '../mllp/server.js';

// ---------------------------------------------------------------------------------------------------------
// Public API

export interface SimPatient {
  ipp?: string;
  ins: { matricule: string; oid: string };
  birthName: string;
  /** As in the INS referential: the space-separated list of the birth certificate's given names. */
  givenNames: string;
  /** YYYYMMDD */
  birthDate: string;
  sex: 'M' | 'F' | 'U';
  /** INSEE code, 5 characters, or 99999 abroad. */
  birthPlaceCode: string;
}

export type AnswerMode = 'normal' | 'silent' | 'AR-transient';

export interface ReceivedMessage {
  /** MSH-10 ('' when unreadable). */
  controlId: string;
  /** MSH-9.2 ('' when unreadable). */
  event: string;
  raw: Buffer;
  /** MSA-1 of the answer; '' when none was sent (silent mode). */
  ack: string;
  /** ERR-5.1 codes of the answer (applicationErrorCode, 900..906). */
  errors: string[];
  /** ERR-3.1 codes of the answer (messageErrorCondition, table 0357). */
  conditions: string[];
  /** ERR-8 texts of the answer. */
  texts: string[];
}

export interface ConsommateurOptions {
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  patients?: SimPatient[];
  /** 'silent': never answers (tests of timeouts). Default 'normal'. */
  answer?: 'normal' | 'silent';
  /** Called once per message received, after it was answered (or held, in silent mode). */
  onReceived?: (entry: ReceivedMessage) => void;
}

export interface IntegratedDocument {
  /** TXA-12 = ClinicalDocument/id, as `root` or `root^extension`. */
  uniqueId: string;
  /** ClinicalDocument/setId, as `root` or `root^extension`. */
  setId?: string;
  /** ClinicalDocument/versionNumber. */
  version?: number;
  /** INS matricule of the recordTarget. */
  patient: string;
  status: 'current' | 'replaced' | 'deleted';
  /** uniqueId of the version this one replaced (T10). */
  replaces?: string;
  cda: Buffer;
  /** MSH-10 of the message that integrated it. */
  controlId: string;
  /** ISO 8601. */
  receivedAt: string;
  /** The e-mail's sender (PRT SB, PRT-15.4). */
  sender?: string;
  /** The e-mail's (first) MSSanté recipient (PRT RCT, PRT-15.4). */
  recipient?: string;
}

/** HL7 table 0357 as the volet lists it ([codes], first table): ERR-3, coding system "messageErrorCondition". */
export const MESSAGE_ERROR_CONDITION = {
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  198: 'Non-conformant cardinality',
  199: 'Other HL7 Error',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing',
  203: 'Unsupported version',
  207: 'Application error',
} as const;
export type MessageErrorCondition = keyof typeof MESSAGE_ERROR_CONDITION;
export const MESSAGE_ERROR_CONDITION_SYSTEM = 'messageErrorCondition';

/** The volet's user-defined table 0533 ([codes], second table): ERR-5, coding system "applicationErrorCode". */
export const APPLICATION_ERROR_CODE = {
  900: "Version du document incorrecte lors d'une demande de remplacement/suppression",
  901: 'Auteur non autorisé à remplacer ou supprimer un document',
  902: 'Identifiant patient inconnu',
  903: 'INS non présent dans le document',
  904: "L'INS transmis ne correspond pas exactement à celui stocké dans la base du consommateur",
  905: "L'INS transmis n'est pas complet",
  906: "Erreur 'Autre'",
} as const;
export type ApplicationErrorCode = keyof typeof APPLICATION_ERROR_CODE;
export const APPLICATION_ERROR_CODE_SYSTEM = 'applicationErrorCode';

/**
 * MSH-21 of the volet ([profils] MSH: "MSH-21.1 : Entity Identifier (1.1) / MSH-21.2 : Namespace Id
 * CISIS_CDA_HL7_LPS").
 */
export const LPS_PROFILE = { entity: '1.1', namespace: 'CISIS_CDA_HL7_LPS' } as const;

export class ConsommateurSimulator {
  readonly port: number;
  readonly #server: MllpServer;
  readonly #state: State;

  private constructor(server: MllpServer, port: number, state: State) {
    this.#server = server;
    this.port = port;
    this.#state = state;
  }

  static async start(opts: ConsommateurOptions = {}): Promise<ConsommateurSimulator> {
    const state = new State(opts);
    const server = new MllpServer(
      { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, closeTimeoutMs: 2_000 },
      {
        onMessage: (payload, conn) => state.onMessage(payload, conn),
        // An oversize frame: AR 199 without MSA-2 (the server then ends the connection).
        onOversize: async () => state.ack(undefined, 'AR', [{ condition: 199, text: 'message trop volumineux' }]),
        onConnection: (conn, event) => {
          if (event === 'close') state.release(conn.id);
        },
        onError: () => {
          /* a client gone while held (silent mode) or writing: nothing to do */
        },
      },
    );
    const { port } = await server.listen();
    return new ConsommateurSimulator(server, port, state);
  }

  /** Adds (or replaces, same INS matricule and OID) a patient of the DPI's base. */
  addPatient(p: SimPatient): void {
    const i = this.#state.patients.findIndex((x) => x.ins.matricule === p.ins.matricule && x.ins.oid === p.ins.oid);
    if (i >= 0) this.#state.patients[i] = { ...p };
    else this.#state.patients.push({ ...p });
  }

  /** 'AR-transient': the next message is answered AR (ERR-3 207, ERR-5 906, "DPI occupé"), then back to 'normal'. */
  setAnswer(mode: AnswerMode): void {
    this.#state.mode = mode;
  }

  /** Silent mode: drops the connections of the messages held unanswered (the sender sees the connection close). */
  dropHeld(): void {
    this.#state.releaseAll();
  }

  /** The documents integrated, in order of integration (copies). */
  documents(): IntegratedDocument[] {
    return [...this.#state.docs.values()].map((r) => ({ ...r.doc }));
  }

  /** Every message received, in order, with the answer given. */
  received(): ReceivedMessage[] {
    return this.#state.log.map((e) => ({
      ...e,
      errors: [...e.errors],
      conditions: [...e.conditions],
      texts: [...e.texts],
    }));
  }

  /**
   * Forgets the documents, the messages received and the duplicate memory; answers normally (or silently when
   * started so). Patients are kept.
   */
  reset(): void {
    this.#state.docs.clear();
    this.#state.log.length = 0;
    this.#state.accepted.clear();
    this.#state.mode = this.#state.initialMode;
  }

  async stop(): Promise<void> {
    this.#state.releaseAll();
    await this.#server.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Refusals

interface Problem {
  condition: MessageErrorCondition;
  application?: ApplicationErrorCode;
  location?: ErrorLocation;
  text?: string;
}

class DpiRefusal extends Error {
  constructor(
    readonly ackCode: 'AE' | 'AR',
    readonly problems: Problem[],
  ) {
    super(problems.map((p) => p.text ?? '').join('; '));
  }
}

/** A technical refusal (ERR-3 from table 0357, no ERR-5). */
function tech(
  ackCode: 'AE' | 'AR',
  condition: Exclude<MessageErrorCondition, 207>,
  where: string | ErrorLocation | undefined,
  text: string,
): DpiRefusal {
  return new DpiRefusal(ackCode, [{ condition, location: typeof where === 'string' ? loc(where) : where, text }]);
}

/** An application refusal: AE, ERR-3 = 207, ERR-5 = code ([profils] ERR, Note 2). */
function app(code: ApplicationErrorCode, where: string | ErrorLocation | undefined, text: string): DpiRefusal {
  return new DpiRefusal('AE', [
    { condition: 207, application: code, location: typeof where === 'string' ? loc(where) : where, text },
  ]);
}

/** 'PID-3', 'MSH-9.2', 'OBX[2]-5.5' → ERL. */
function loc(path: string): ErrorLocation {
  const p = parsePath(path);
  const l: ErrorLocation = { segment: p.segment, sequence: p.occurrence, field: p.field };
  if (p.repetition !== 1 || p.component !== undefined) l.repetition = p.repetition;
  if (p.component !== undefined) l.component = p.component;
  if (p.subcomponent !== undefined) l.subcomponent = p.subcomponent;
  return l;
}

function erl(l: ErrorLocation | undefined): string {
  if (!l) return '';
  const parts = [
    escape(l.segment, STANDARD_DELIMITERS),
    String(l.sequence ?? 1),
    n(l.field),
    n(l.repetition),
    n(l.component),
    n(l.subcomponent),
  ];
  return trimEnd(parts, '^');
}

function n(x: number | undefined): string {
  return x === undefined ? '' : String(x);
}

function trimEnd(fields: string[], sep: string): string {
  let end = fields.length;
  while (end > 1 && fields[end - 1] === '') end--;
  return fields.slice(0, end).join(sep);
}

// ---------------------------------------------------------------------------------------------------------
// State and message handling

interface StoredDocument {
  doc: IntegratedDocument;
  /** Author ids of the original document (persons and organisations), inherited along the replacements (901). */
  owners: Set<string>;
  /** The e-mail sender of the original document. */
  originalSender?: string;
}

type Change =
  | { kind: 'same' }
  | { kind: 'store'; record: StoredDocument; replaced?: string }
  | { kind: 'delete'; uniqueId: string };

const EVENTS = {
  T02: { orc: 'NW', obx11: 'F' },
  T10: { orc: 'RO', obx11: 'C' },
  T04: { orc: 'CA', obx11: 'D' },
} as const;
type Event = keyof typeof EVENTS;

/**
 * [profils] OBXNTE "Groupes OBXNTE portant les métadonnées MSSanté": "requises et doivent apparaître ... dans
 * l'ordre".
 */
const METADATA = ['MASQUE_PS', 'INVISIBLE_PATIENT', 'INVISIBLE_REP_LEGAUX', 'MODIF_CONF_CODE'] as const;

class State {
  readonly patients: SimPatient[];
  readonly docs = new Map<string, StoredDocument>();
  readonly log: ReceivedMessage[] = [];
  /** MSH-10 → sha256 of the payloads answered AA (the same bytes again: AA again, not integrated twice). */
  readonly accepted = new Map<string, Set<string>>();
  readonly initialMode: AnswerMode;
  mode: AnswerMode;
  readonly #held = new Map<string, Set<(e: Error) => void>>();
  readonly #onReceived: ConsommateurOptions['onReceived'];
  #seq = 0;

  constructor(opts: ConsommateurOptions) {
    this.patients = (opts.patients ?? []).map((p) => ({ ...p }));
    this.initialMode = opts.answer ?? 'normal';
    this.mode = this.initialMode;
    this.#onReceived = opts.onReceived;
  }

  async onMessage(payload: Buffer, conn: ConnectionInfo): Promise<Buffer> {
    const entry: ReceivedMessage = {
      controlId: '',
      event: '',
      raw: Buffer.from(payload),
      ack: '',
      errors: [],
      conditions: [],
      texts: [],
    };
    this.log.push(entry);
    let msg: Hl7Message | undefined;
    let msh: MshHeader | undefined;
    let parseError: Hl7ParseError | undefined;
    try {
      msg = Hl7Message.parse(payload);
      msh = readMsh(msg);
    } catch (e) {
      if (!(e instanceof Hl7ParseError)) throw e;
      parseError = e;
      // An unknown MSH-18: read the header anyway (Latin-1 is lossless) so that the refusal names the message.
      try {
        msh = readMsh(Hl7Message.parse(payload, { charset: '8859/1' }));
      } catch {
        msh = undefined;
      }
    }
    if (msh) {
      entry.controlId = msh.controlId;
      entry.event = msh.triggerEvent;
    }

    if (this.mode === 'silent') {
      this.#onReceived?.(entry);
      return this.hold(conn.id);
    }
    let answer: Buffer;
    if (this.mode === 'AR-transient') {
      this.mode = 'normal';
      answer = this.reply(entry, msh, 'AR', [
        { condition: 207, application: 906, text: 'DPI momentanément indisponible : message à réémettre plus tard' },
      ]);
    } else if (parseError || !msg || !msh) {
      const e = parseError!;
      answer = this.reply(entry, msh, 'AE', [
        { condition: e.code as MessageErrorCondition, location: e.location, text: e.message },
      ]);
    } else {
      answer = this.handle(entry, payload, msg, msh);
    }
    this.#onReceived?.(entry);
    return answer;
  }

  private handle(entry: ReceivedMessage, payload: Buffer, msg: Hl7Message, msh: MshHeader): Buffer {
    const hash = createHash('sha256').update(payload).digest('hex');
    // A resend of a message already integrated (same MSH-10, same bytes): AA again, nothing integrated twice.
    // The same MSH-10 with other content is another message (the ANS examples all use MSH-10 = 015).
    if (this.accepted.get(msh.controlId)?.has(hash)) return this.reply(entry, msh, 'AA', []);
    let change: Change;
    try {
      change = this.process(msg, msh);
    } catch (e) {
      if (e instanceof DpiRefusal) return this.reply(entry, msh, e.ackCode, e.problems);
      // A bug of the simulator, or an input it did not foresee: said, not hidden behind a closed connection.
      return this.reply(entry, msh, 'AE', [
        { condition: 207, application: 906, text: `erreur interne du simulateur : ${(e as Error).message}` },
      ]);
    }
    this.commit(change);
    let seen = this.accepted.get(msh.controlId);
    if (!seen) this.accepted.set(msh.controlId, (seen = new Set()));
    seen.add(hash);
    return this.reply(entry, msh, 'AA', []);
  }

  private commit(change: Change): void {
    if (change.kind === 'store') {
      if (change.replaced) this.docs.get(change.replaced)!.doc.status = 'replaced';
      this.docs.set(change.record.doc.uniqueId, change.record);
    } else if (change.kind === 'delete') {
      this.docs.get(change.uniqueId)!.doc.status = 'deleted';
    }
  }

  /**
   * Silent mode: the message is never answered; released (rejected, the connection closes) when the peer
   * leaves or at stop().
   */
  private hold(connId: string): Promise<Buffer> {
    return new Promise<Buffer>((_, reject) => {
      let set = this.#held.get(connId);
      if (!set) this.#held.set(connId, (set = new Set()));
      set.add(reject);
    });
  }

  release(connId: string): void {
    const set = this.#held.get(connId);
    if (!set) return;
    this.#held.delete(connId);
    for (const reject of set) reject(new Error('CONSOMMATEUR simulator: held message released (silent mode)'));
  }

  releaseAll(): void {
    for (const id of [...this.#held.keys()]) this.release(id);
  }

  private reply(
    entry: ReceivedMessage,
    msh: MshHeader | undefined,
    code: 'AA' | 'AE' | 'AR',
    problems: Problem[],
  ): Buffer {
    entry.ack = code;
    entry.conditions = problems.map((p) => String(p.condition));
    entry.errors = problems.filter((p) => p.application !== undefined).map((p) => String(p.application));
    entry.texts = problems.map((p) => p.text ?? '');
    return this.ack(msh, code, problems);
  }

  /** The volet's ACK: buildAck's MSH and MSA, then our ERR segments (ERR-3 / ERR-5 with the volet's coding systems). */
  ack(msh: MshHeader | undefined, code: 'AA' | 'AE' | 'AR', problems: Problem[]): Buffer {
    const opts = { code, controlId: `CONSO-${Date.now().toString(36)}-${++this.#seq}`, fallbackVersion: '2.6' };
    let text = buildAck(msh, opts);
    const esc = (s: string) => escape(s, STANDARD_DELIMITERS);
    for (const p of problems) {
      const err = [
        'ERR',
        '',
        erl(p.location),
        `${p.condition}^${esc(MESSAGE_ERROR_CONDITION[p.condition] ?? '')}^${MESSAGE_ERROR_CONDITION_SYSTEM}`,
        'E',
        p.application === undefined
          ? ''
          : `${p.application}^${esc(APPLICATION_ERROR_CODE[p.application])}^${APPLICATION_ERROR_CODE_SYSTEM}`,
        '',
        '',
        esc(p.text ?? ''),
      ];
      text += trimEnd(err, '|') + '\r';
    }
    const charset: Hl7Charset = ackCharset(msh, {});
    return encodeString(text, charset);
  }

  // -------------------------------------------------------------------------------------------------------
  // The checks

  private process(msg: Hl7Message, msh: MshHeader): Change {
    const event = checkHeader(msg, msh);
    checkStructure(msg);
    const group = checkFields(msg, event);
    const { header, cda } = readDocument(msg);
    const uniqueId = checkDocumentId(msg, header);
    this.checkPatient(msg, header);
    const matricule = header.recordTarget.ins!.matricule;
    const mails = group.mails;

    if (event === 'T02') {
      const existing = this.docs.get(uniqueId);
      if (existing) {
        // The same document sent again (another MSH-10): nothing to do. Another content under the same id: refused.
        if (existing.doc.status === 'current' && existing.doc.cda.equals(cda)) return { kind: 'same' };
        throw app(
          906,
          'TXA-12',
          `le document ${uniqueId} est déjà intégré (statut ${existing.doc.status}) : ` +
            'un remplacement passe par MDM^T10',
        );
      }
      return {
        kind: 'store',
        record: {
          doc: this.newDocument(uniqueId, header, matricule, cda, msh, mails),
          owners: authorIds(header),
          ...(mails.sender ? { originalSender: mails.sender } : {}),
        },
      };
    }

    if (event === 'T10') {
      // [profils] TXA-13 "Parent document number ... C (Requis dans le cas d'une demande de remplacement)";
      // [codes] 900 "la version de document transmise dans le message HL7 ne correspond pas à la version la plus
      // récente du document existant au niveau de l'application réceptrice"; [proc] remplacement, pré-conditions:
      // "Le CONSOMMATEUR dispose de la dernière version du document original dans sa base de données."
      const parent = txaId(msg, 13);
      const rplc = header.replaces.map(idString);
      if (rplc.length && !rplc.includes(parent)) {
        throw app(
          900,
          'TXA-13',
          'relatedDocument[@typeCode=RPLC]/parentDocument/id du document et TXA-13 désignent deux documents différents',
        );
      }
      const old = this.docs.get(parent);
      if (!old) throw app(900, 'TXA-13', `le document remplacé ${parent} est inconnu du DPI`);
      if (old.doc.status !== 'current')
        throw app(
          900,
          'TXA-13',
          `le document remplacé ${parent} n'est pas la version la plus récente (statut ${old.doc.status})`,
        );
      if (this.docs.has(uniqueId)) throw app(900, 'TXA-12', `la nouvelle version ${uniqueId} est déjà connue du DPI`);
      const setId = header.setId && idString(header.setId);
      if (setId && old.doc.setId && setId !== old.doc.setId)
        throw app(900, 'TXA-13', 'le setId de la nouvelle version diffère de celui du document remplacé');
      if (
        header.versionNumber !== undefined &&
        old.doc.version !== undefined &&
        header.versionNumber !== old.doc.version + 1
      ) {
        throw app(
          900,
          'TXA-13',
          `versionNumber ${header.versionNumber} : ` +
            `la version suivante de la version ${old.doc.version} intégrée est attendue`,
        );
      }
      if (old.doc.patient !== matricule) throw app(906, 'TXA-13', 'le document remplacé concerne un autre patient');
      this.checkRequester(old, msg, group, authorIds(header));
      const doc = this.newDocument(uniqueId, header, matricule, cda, msh, mails);
      doc.replaces = parent;
      if (!doc.setId && old.doc.setId) doc.setId = old.doc.setId;
      return {
        kind: 'store',
        replaced: parent,
        record: { doc, owners: old.owners, ...(old.originalSender ? { originalSender: old.originalSender } : {}) },
      };
    }

    // T04. [proc] suppression, pré-conditions: "Le document doit être validé et doit correspondre à la dernière
    // version du document envoyé au CONSOMMATEUR." The ANS example carries in TXA-12 (and OBX-5) the version to delete.
    const target = this.docs.get(uniqueId);
    if (!target) throw app(900, 'TXA-12', `le document à supprimer ${uniqueId} est inconnu du DPI`);
    if (target.doc.status !== 'current')
      throw app(
        900,
        'TXA-12',
        `le document à supprimer ${uniqueId} n'est pas la version la plus récente (statut ${target.doc.status})`,
      );
    if (
      header.versionNumber !== undefined &&
      target.doc.version !== undefined &&
      header.versionNumber !== target.doc.version
    ) {
      throw app(
        900,
        'TXA-12',
        `versionNumber ${header.versionNumber} : la version intégrée est la ${target.doc.version}`,
      );
    }
    if (target.doc.patient !== matricule) throw app(906, 'TXA-12', 'le document à supprimer concerne un autre patient');
    // The CDA of a deletion is the document itself: its author says nothing of who asks; the e-mail's sender does.
    this.checkRequester(target, msg, group, new Set());
    return { kind: 'delete', uniqueId };
  }

  private newDocument(
    uniqueId: string,
    header: CdaHeader,
    patient: string,
    cda: Buffer,
    msh: MshHeader,
    mails: Mails,
  ): IntegratedDocument {
    const doc: IntegratedDocument = {
      uniqueId,
      patient,
      status: 'current',
      cda,
      controlId: msh.controlId,
      receivedAt: new Date().toISOString(),
    };
    if (header.setId) doc.setId = idString(header.setId);
    if (header.versionNumber !== undefined) doc.version = header.versionNumber;
    if (mails.sender) doc.sender = mails.sender;
    if (mails.recipient) doc.recipient = mails.recipient;
    return doc;
  }

  /**
   * [codes] 901 "l'acteur qui demande le traitement sur le document doit être l'auteur du document ou un acteur qui
   * appartient à la même organisation que l'auteur du document original. Dans le cas contraire, le message est
   * rejeté." The requester: the new version's authors (persons, organisations; custodian when no author
   * organisation) for a T10, and for both events the e-mail's sender as PRT SB identifies it (PRT-5 person,
   * PRT-8 organisation, PRT-15 mailbox). The original: the authors of the first version (and its sender's mailbox).
   */
  private checkRequester(original: StoredDocument, msg: Hl7Message, group: Group, cdaRequester: Set<string>): void {
    const requester = new Set([...cdaRequester, ...prtIds(msg, group.sbOccurrence)]);
    const allowed =
      [...requester].some((id) => original.owners.has(id)) ||
      (!!group.mails.sender &&
        !!original.originalSender &&
        group.mails.sender.toLowerCase() === original.originalSender.toLowerCase());
    if (!allowed) {
      const where = cdaRequester.size ? 'OBX-5' : `PRT[${group.sbOccurrence}]-5`;
      throw app(
        901,
        where,
        `le demandeur n'est ni l'auteur du document ${original.doc.uniqueId} ni de la même organisation que lui`,
      );
    }
  }

  /**
   * The patient: the CDA recordTarget, PID and the DPI's base ([profils] PID: "Le PID-3 doit être identique aux
   * identifiants de patient portés par le document CDA (recordTarget/patientRole/id)"; [codes] 903, 905, 902, 904).
   */
  private checkPatient(msg: Hl7Message, header: CdaHeader): SimPatient {
    const rt = header.recordTarget;
    // 903 "Le document CDA contenu dans le message contient une liste d'identifiants de patient mais pas l'INS."
    const insIds = rt.ids.filter((i) => isInsOid(i.root));
    if (!insIds.length) {
      throw app(
        903,
        'OBX-5',
        'recordTarget/patientRole/id : aucun identifiant sous une OID de ' +
          "l'INS (NIR, NIA, NIR de test ou de démonstration)",
      );
    }
    // 905 "Le matricule INS du patient est présent dans le document CDA ... mais l'ensemble des traits de l'INS ne
    // sont pas présents." Also incomplete: an INS OID without matricule, a malformed matricule.
    const cdaIns = insIds[0]!;
    if (!cdaIns.extension)
      throw app(905, 'OBX-5', "recordTarget/patientRole/id sous l'OID de l'INS sans matricule (extension)");
    if (!checkIns(cdaIns.extension, cdaIns.root).ok)
      throw app(905, 'OBX-5', 'matricule INS du document mal formé (15 caractères, clé de contrôle)');
    const cdaTraits: Traits = {
      birthName: rt.birthName,
      givenNames: rt.givenNames.length ? normalizeList(rt.givenNames.join(' ')) : undefined,
      birthDate: rt.birthDate,
      sex: rt.sex,
      birthPlaceCode: rt.birthPlaceCode,
    };
    const missingCda = TRAITS.filter((t) => !cdaTraits[t.key]).map((t) => t.cda);
    if (missingCda.length) throw app(905, 'OBX-5', `traits de l'INS absents du document : ${missingCda.join(', ')}`);

    // PID-3: the INS (CX-5 = INS, or assigned by an INS OID), with its OID in CX-4.2.
    const pid = msg.segment('PID')!;
    let pidIns: { matricule: string; oid: string; rep: number } | undefined;
    for (let r = 1; r <= repetitions(msg, pid, 3); r++) {
      const id = msg.get(`PID-3[${r}].1`) ?? '';
      const oid = msg.get(`PID-3[${r}].4.2`) ?? '';
      const type = msg.get(`PID-3[${r}].5`) ?? '';
      if (type !== 'INS' && !isInsOid(oid)) continue;
      if (!id) throw app(905, `PID-3[${r}].1`, 'PID-3 : INS sans matricule');
      if (!oid)
        throw app(905, `PID-3[${r}].4.2`, "PID-3 : matricule INS sans l'OID de son autorité d'affectation (CX-4.2)");
      if (!isInsOid(oid))
        throw app(
          905,
          `PID-3[${r}].4.2`,
          "PID-3 : l'OID de l'INS n'est pas une OID de l'INS (NIR, NIA, NIR de test ou de démonstration)",
        );
      if (!checkIns(id, oid).ok)
        throw app(905, `PID-3[${r}].1`, 'PID-3 : matricule INS mal formé (15 caractères, clé de contrôle)');
      pidIns = { matricule: id, oid, rep: r };
      break;
    }
    const t = readTraits(msg, pid);
    const pidTraits: Traits = {
      birthName: lType(msg, pid) ? t.birthName : undefined,
      givenNames: t.givenNames.length ? normalizeList(t.givenNames.join(' ')) : undefined,
      birthDate: t.birthDate,
      sex: t.sex,
      birthPlaceCode: t.birthPlaceCode,
    };
    const missingPid = TRAITS.filter((x) => !pidTraits[x.key]).map((x) => x.pid);
    if (missingPid.length) throw app(905, 'PID-5', `traits de l'INS absents du PID : ${missingPid.join(', ')}`);

    // 902 "Le patient pour lequel le traitement sur le document est demandé est inconnu de l'application réceptrice."
    const patient = this.patients.find((p) => p.ins.matricule === cdaIns.extension && p.ins.oid === cdaIns.root);
    if (!patient)
      throw app(
        902,
        pidIns ? `PID-3[${pidIns.rep}]` : 'PID-3',
        'aucun patient du DPI ne porte cet INS (matricule et OID)',
      );

    // 904 "L'INS du patient est présent dans le document CDA ... mais les traits ou le matricule ne correspondent pas
    // exactement à ceux stockés dans le système consommateur." Exact comparison: document, PID, base.
    const problems: Problem[] = [];
    const mismatch = (location: string, what: string, pairs: [string, string | undefined][]) => {
      const differing: string[] = [];
      for (let i = 0; i < pairs.length; i++) {
        for (let j = i + 1; j < pairs.length; j++)
          if (pairs[i]![1] !== pairs[j]![1]) differing.push(`${pairs[i]![0]} et ${pairs[j]![0]}`);
      }
      if (differing.length) {
        problems.push({
          condition: 207,
          application: 904,
          location: loc(location),
          text: `${what} : ${differing.join(' ; ')} diffèrent`,
        });
      }
    };
    const insPath = pidIns ? `PID-3[${pidIns.rep}]` : 'PID-3';
    if (!pidIns) {
      problems.push({
        condition: 207,
        application: 904,
        location: loc('PID-3'),
        text: "PID-3 ne porte pas l'INS du document (PID-3 doit être identique aux identifiants du document)",
      });
    } else {
      mismatch(`${insPath}.1`, 'matricule INS', [
        ['document CDA', cdaIns.extension],
        ['PID-3', pidIns.matricule],
        ['base du DPI', patient.ins.matricule],
      ]);
      mismatch(`${insPath}.4.2`, "OID de l'INS", [
        ['document CDA', cdaIns.root],
        ['PID-3', pidIns.oid],
        ['base du DPI', patient.ins.oid],
      ]);
    }
    const base: Traits = {
      birthName: patient.birthName,
      givenNames: normalizeList(patient.givenNames),
      birthDate: patient.birthDate,
      sex: patient.sex,
      birthPlaceCode: patient.birthPlaceCode,
    };
    for (const trait of TRAITS) {
      const norm = trait.key === 'birthDate' ? (v: string | undefined) => v?.slice(0, 8) : (v: string | undefined) => v;
      mismatch(trait.key === 'birthPlaceCode' ? bdlPath(msg, pid) : trait.path, trait.label, [
        ['document CDA', norm(cdaTraits[trait.key])],
        [trait.pid, norm(pidTraits[trait.key])],
        ['base du DPI', norm(base[trait.key])],
      ]);
    }
    if (problems.length) throw new DpiRefusal('AE', problems);
    return patient;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Identity helpers

interface Traits {
  birthName: string | undefined;
  givenNames: string | undefined;
  birthDate: string | undefined;
  sex: string | undefined;
  birthPlaceCode: string | undefined;
}

/** The five traits of the INS referential, where each source carries them. */
const TRAITS: { key: keyof Traits; label: string; cda: string; pid: string; path: string }[] = [
  {
    key: 'birthName',
    label: 'nom de naissance',
    cda: 'family qualifier="BR"',
    pid: 'PID-5 (type L).1',
    path: 'PID-5.1',
  },
  {
    key: 'givenNames',
    label: "prénoms de l'acte de naissance",
    cda: 'given',
    pid: 'PID-5 (type L).3',
    path: 'PID-5.3',
  },
  { key: 'birthDate', label: 'date de naissance', cda: 'birthTime', pid: 'PID-7', path: 'PID-7' },
  { key: 'sex', label: 'sexe', cda: 'administrativeGenderCode', pid: 'PID-8', path: 'PID-8' },
  {
    key: 'birthPlaceCode',
    label: 'code INSEE du lieu de naissance',
    cda: 'birthplace/place/addr/county',
    pid: 'PID-11 (type BDL).9',
    path: 'PID-11',
  },
];

function normalizeList(s: string): string | undefined {
  const v = s.split(/\s+/).filter(Boolean).join(' ');
  return v || undefined;
}

/** True when PID-5 has a repetition of type L (the INS annexe: the birth name is PID-5 with XPN-7 = L). */
function lType(msg: Hl7Message, pid: Hl7Segment): boolean {
  for (let r = 1; r <= repetitions(msg, pid, 5); r++) if (msg.get(`PID-5[${r}].7`) === 'L') return true;
  return false;
}

function bdlPath(msg: Hl7Message, pid: Hl7Segment): string {
  for (let r = 1; r <= repetitions(msg, pid, 11); r++) if (msg.get(`PID-11[${r}].7`) === 'BDL') return `PID-11[${r}].9`;
  return 'PID-11';
}

// ---------------------------------------------------------------------------------------------------------
// Message checks

/**
 * MSH ([profils] "Le segment MSH – Header du message"). MSH-9 one of MDM^T02^MDM_T02, MDM^T10^MDM_T02,
 * MDM^T04^MDM_T02; MSH-12 2.6; MSH-17 FRA; MSH-18 UNICODE UTF-8 or 8859/15; MSH-21 1.1^CISIS_CDA_HL7_LPS.
 * Another message type or event: AR 200 / 201 (HL7 v2.6 §2.9.2, original acknowledgment mode: a message whose
 * type, event or processing id the receiver does not support is rejected, AR). Another version: AE 203, as the
 * volet's own example "Un acquittement négatif retourné par le CONSOMMATEUR : version d'HL7 inconnue" answers.
 */
function checkHeader(msg: Hl7Message, msh: MshHeader): Event {
  if (msh.messageType !== 'MDM') {
    throw tech(
      'AR',
      200,
      'MSH-9.1',
      `type de message ${msh.messageType || '(vide)'} non supporté : ` +
        'MDM^T02^MDM_T02, MDM^T10^MDM_T02 ou MDM^T04^MDM_T02 attendu',
    );
  }
  if (!(msh.triggerEvent in EVENTS)) {
    throw tech(
      'AR',
      201,
      'MSH-9.2',
      `évènement ${msh.triggerEvent || '(vide)'} non supporté : T02, T10 ou T04 attendu`,
    );
  }
  const event = msh.triggerEvent as Event;
  if (!msh.messageStructure) throw tech('AE', 101, 'MSH-9.3', 'MSH-9.3 (structure du message) requis : MDM_T02');
  if (msh.messageStructure !== 'MDM_T02')
    throw tech('AR', 200, 'MSH-9.3', `structure ${msh.messageStructure} non supportée : MDM_T02 attendu`);
  if (msh.version !== '2.6')
    throw tech('AE', 203, 'MSH-12', `version HL7 ${msh.version || '(vide)'} non supportée : 2.6 attendu`);
  for (const f of [3, 4, 5, 6, 7, 10, 11, 17, 18, 21]) {
    if (!msg.get(`MSH-${f}`)) throw tech('AE', 101, `MSH-${f}`, `MSH-${f} requis`);
  }
  const pid = msg.get('MSH-11.1') ?? '';
  if (!['P', 'T', 'D'].includes(pid))
    throw tech('AR', 202, 'MSH-11', `processing id ${pid} non supporté : P, T ou D attendu`);
  if (msh.countryCode !== 'FRA') throw tech('AE', 103, 'MSH-17', `MSH-17 ${msh.countryCode} : FRA attendu`);
  const charset = msg.get('MSH-18[1]') ?? '';
  if (charset !== 'UNICODE UTF-8' && charset !== '8859/15')
    throw tech('AE', 103, 'MSH-18', `jeu de caractères ${charset} : UNICODE UTF-8 ou 8859/15 attendu`);
  let profile = false;
  const msh21 = msg.getRaw('MSH-21') ?? '';
  for (let r = 1; r <= msh21.split(msg.delimiters.repetition).length; r++) {
    // Spaces trimmed: the volet's own MSH example writes "1.1^ CISIS_CDA_HL7_LPS".
    if (
      (msg.get(`MSH-21[${r}].1`) ?? '').trim() === LPS_PROFILE.entity &&
      (msg.get(`MSH-21[${r}].2`) ?? '').trim() === LPS_PROFILE.namespace
    )
      profile = true;
  }
  if (!profile)
    throw tech(
      'AE',
      103,
      'MSH-21',
      `profil de message ${msh21} : ${LPS_PROFILE.entity}^${LPS_PROFILE.namespace} attendu`,
    );
  return event;
}

/**
 * [profils] "Description du profil du message MDM": MSH [{SFT}] [UAC] EVN PID PV1 ORC [{TQ1 [{TQ2}]}] OBR [{NTE}]
 * TXA {OBX [{PRT}] [{NTE}]}. Anything else (a missing or extra segment, another order): AE 100 "Les segments ne
 * sont pas dans le bon ordre ou il manque un ou plusieurs segments requis".
 */
function checkStructure(msg: Hl7Message): void {
  const names = msg.segments.map((s) => s.name);
  const seen = new Map<string, number>();
  let i = 0;
  const take = () => {
    const name = names[i++]!;
    seen.set(name, (seen.get(name) ?? 0) + 1);
  };
  const fail = (expected: string): never => {
    const found = names[i];
    const location: ErrorLocation = found
      ? { segment: found, sequence: (seen.get(found) ?? 0) + 1 }
      : { segment: expected };
    throw tech(
      'AE',
      100,
      location,
      found
        ? `segment ${found} inattendu à la position ${i + 1} : ${expected} attendu`
        : `segment ${expected} manquant`,
    );
  };
  const one = (name: string) => (names[i] === name ? take() : fail(name));
  const many = (name: string) => {
    while (names[i] === name) take();
  };
  one('MSH');
  many('SFT');
  if (names[i] === 'UAC') take();
  one('EVN');
  one('PID');
  one('PV1');
  one('ORC');
  while (names[i] === 'TQ1') {
    take();
    many('TQ2');
  }
  one('OBR');
  many('NTE');
  one('TXA');
  one('OBX');
  many('PRT');
  many('NTE');
  while (names[i] === 'OBX') {
    take();
    many('PRT');
    many('NTE');
  }
  if (i < names.length) fail('fin du message (OBX, PRT ou NTE)');
}

interface Mails {
  sender?: string;
  recipient?: string;
}

interface Group {
  /** Occurrence (among all PRT) of the sender's PRT. */
  sbOccurrence: number;
  mails: Mails;
}

/**
 * The fields the volet constrains ([profils] PID, PV1, ORC, OBR, TXA, OBXNTE groups; [evts] OBX-11 per event).
 * Missing: AE 101. A value outside the volet's: AE 103. A value that contradicts the event (ORC-1, OBX-11): AE 199.
 */
function checkFields(msg: Hl7Message, event: Event): Group {
  const need = (path: string, what: string): string => {
    const v = msg.get(path);
    if (!v) throw tech('AE', 101, path, `${path} (${what}) requis`);
    return v;
  };
  const fixed = (path: string, what: string, allowed: readonly string[]): string => {
    const v = need(path, what);
    if (!allowed.includes(v)) throw tech('AE', 103, path, `${path} (${what}) = ${v} : ${allowed.join(' ou ')} attendu`);
    return v;
  };
  // PID: [profils] "PID-3 Identifiants du patient R", "PID-5 Nom du patient R".
  need('PID-3', 'identifiants du patient');
  need('PID-5', 'nom du patient');
  // PV1-2: [profils] "Classe du patient : N (Not applicable)".
  fixed('PV1-2', 'classe du patient', ['N']);
  // ORC-1: NW (intégration), RO (remplacement), CA (suppression).
  const orc = fixed('ORC-1', 'order control', ['NW', 'RO', 'CA']);
  if (orc !== EVENTS[event].orc)
    throw tech('AE', 199, 'ORC-1', `ORC-1 = ${orc} contredit l'évènement ${event} (${EVENTS[event].orc} attendu)`);
  need('OBR-4.1', 'code du document');
  // TXA: [profils] "Les données d'entête du document – Segment TXA".
  fixed('TXA-1', 'set id', ['1']);
  need('TXA-2', 'type de document');
  fixed('TXA-3', 'présentation du contenu', ['TEXT']);
  need('TXA-12.1', 'identifiant unique du document');
  if (event === 'T10') need('TXA-13.1', 'identifiant du document remplacé, requis pour un remplacement');
  fixed('TXA-17', 'statut de complétude', ['AU']);

  // First OBXNTE group: the CDA in base64 ([profils] "Le groupe de segments OBXNTE portant le document CDA").
  const obx = msg.segmentsNamed('OBX');
  fixed('OBX-1', 'set id', ['1']);
  fixed('OBX-2', 'value type', ['ED']);
  need('OBX-3.1', 'code du document');
  need('OBX-5.5', 'document CDA');
  const ci = (path: string, what: string, expected: string) => {
    const v = need(path, what);
    if (v.toLowerCase() !== expected.toLowerCase())
      throw tech('AE', 103, path, `${path} (${what}) = ${v} : ${expected} attendu`);
  };
  ci('OBX-5.2', 'type', 'text');
  ci('OBX-5.3', 'data subtype', 'XML');
  ci('OBX-5.4', 'encoding', 'Base64');
  const obx11 = fixed('OBX-11', 'statut du document', ['F', 'C', 'D']);
  if (obx11 !== EVENTS[event].obx11) {
    throw tech(
      'AE',
      199,
      'OBX-11',
      `OBX-11 = ${obx11} contredit l'évènement ${event} (${EVENTS[event].obx11} attendu, evenements-declenchants)`,
    );
  }

  // Its PRT segments: the sender (SB, required), the recipient(s) (RCT, required if known), the reply address (REPLY).
  const names = msg.segments.map((s) => s.name);
  const firstObx = names.indexOf('OBX');
  let prtCount = 0;
  for (let i = firstObx + 1; i < names.length && names[i] !== 'OBX'; i++) if (names[i] === 'PRT') prtCount++;
  const mails: Mails = {};
  let sbOccurrence = 0;
  for (let k = 1; k <= prtCount; k++) {
    const role = fixed(`PRT[${k}]-4.1`, 'participation', ['SB', 'RCT', 'REPLY']);
    fixed(`PRT[${k}]-15.3`, 'type de télécommunication', ['X.400']);
    const address = need(`PRT[${k}]-15.4`, 'adresse de messagerie');
    if (role === 'SB' && !sbOccurrence) {
      sbOccurrence = k;
      mails.sender = address;
    } else if (role === 'RCT' && !mails.recipient) {
      mails.recipient = address;
    }
  }
  if (!sbOccurrence)
    throw tech(
      'AE',
      100,
      { segment: 'PRT' },
      "segment PRT de l'expéditeur (PRT-4 = SB) manquant après l'OBX du document",
    );

  // Second group: the e-mail ([profils] "Le groupe de segments portant les informations du courriel MSSanté").
  if (obx.length < 2)
    throw tech('AE', 100, { segment: 'OBX', sequence: 2 }, 'OBX 2 (informations du courriel MSSanté) manquant');
  fixed('OBX[2]-1', 'set id', ['2']);
  fixed('OBX[2]-2', 'value type', ['ED']);
  need('OBX[2]-3.1', 'Message-ID du courriel');
  need('OBX[2]-5', 'contenu du courriel');
  fixed('OBX[2]-11', 'statut', ['F']);

  // The MSSanté metadata, required, in this order ([profils] "Groupes OBXNTE portant les métadonnées MSSanté").
  METADATA.forEach((code, j) => {
    const k = j + 3;
    if (obx.length < k) throw tech('AE', 100, { segment: 'OBX', sequence: k }, `OBX ${k} (${code}) manquant`);
    fixed(`OBX[${k}]-1`, 'set id', [String(k)]);
    fixed(`OBX[${k}]-2`, 'value type', ['CWE']);
    fixed(`OBX[${k}]-3.1`, 'métadonnée', [code]);
    fixed(`OBX[${k}]-3.3`, 'système de codage', ['MetaDMPMSS']);
    fixed(`OBX[${k}]-5.1`, `valeur de ${code}`, ['Y', 'N']);
    fixed(`OBX[${k}]-11`, 'statut', ['F']);
  });
  return { sbOccurrence, mails };
}

/** The CDA of OBX 1 (OBX-5.5, base64), read with the engine's extractor and CDA header reader; else AE 102. */
function readDocument(msg: Hl7Message): { header: CdaHeader; cda: Buffer } {
  // extractDocuments reads every ED OBX; the e-mail's OBX 2 is not a document: hand it OBX 1 only.
  const only = Hl7Message.parse(`${msg.segment('MSH')!.toString()}\r${msg.segment('OBX')!.toString()}\r`);
  let cda: Buffer;
  try {
    const docs = extractDocuments(only);
    if (docs.length !== 1 || docs[0]!.mediaType !== 'text/xml')
      throw tech('AE', 102, 'OBX-5', 'OBX 1 ne porte pas un document CDA (text^XML^Base64)');
    cda = docs[0]!.bytes;
  } catch (e) {
    if (e instanceof DocumentError) throw tech('AE', 102, 'OBX-5.5', e.message);
    throw e;
  }
  try {
    return { header: readCdaHeader(cda), cda };
  } catch (e) {
    if (e instanceof CdaError) throw tech('AE', 102, 'OBX-5.5', e.message);
    throw e;
  }
}

/**
 * [profils] TXA-12: "Si ClinicalDocument/id@extension est renseigné : TXA-12.1 <= extension, TXA-12.3 <= root,
 * TXA-12.4 <= ISO; sinon TXA-12.1 <= ClinicalDocument/id@root". (TXA-12.2 is tolerated: the ANS examples put
 * the organisation there.) TXA-12 and the CDA id must be the same document, else AE 207 / 906.
 */
function checkDocumentId(msg: Hl7Message, header: CdaHeader): string {
  const id = txaId(msg, 12);
  const cda = idString(header.id);
  if (id !== cda) throw app(906, 'TXA-12', 'TXA-12 ne désigne pas le document CDA transmis (ClinicalDocument/id)');
  return id;
}

/** TXA-12 / TXA-13 as `root` or `root^extension`, per the volet's rule. */
function txaId(msg: Hl7Message, field: 12 | 13): string {
  const first = msg.get(`TXA-${field}.1`) ?? '';
  const root = msg.get(`TXA-${field}.3`) ?? '';
  const type = msg.get(`TXA-${field}.4`) ?? '';
  if (root || type === 'ISO') return `${root}^${first}`;
  return first;
}

function idString(id: InstanceId): string {
  return id.extension ? `${id.root}^${id.extension}` : id.root;
}

/** Author persons and organisations of a document (custodian when no author organisation), as `root^extension`. */
function authorIds(header: CdaHeader): Set<string> {
  const out = new Set<string>();
  let org = false;
  for (const a of header.authors) {
    if (a.person?.id) out.add(idString(a.person.id));
    if (a.organization?.id) {
      out.add(idString(a.organization.id));
      org = true;
    }
  }
  if (!org && header.custodian?.id) out.add(idString(header.custodian.id));
  return out;
}

/** The sender's ids in PRT SB: PRT-5 (person: 5.1 under 5.9.2) and PRT-8 (organisation: 8.10 under 8.6.2). */
function prtIds(msg: Hl7Message, k: number): string[] {
  const out: string[] = [];
  const person = msg.get(`PRT[${k}]-5.1`);
  const personRoot = msg.get(`PRT[${k}]-5.9.2`);
  if (person && personRoot) out.push(`${personRoot}^${person}`);
  const org = msg.get(`PRT[${k}]-8.10`);
  const orgRoot = msg.get(`PRT[${k}]-8.6.2`);
  if (org && orgRoot) out.push(`${orgRoot}^${org}`);
  return out;
}
