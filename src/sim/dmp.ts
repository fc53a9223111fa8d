/**
 * A strict simulator of the DMP (Mon espace santé) XDS.b web services, for tests and for running the
 * engine without the real platform: ITI-41 on `<basePath>/repository` (MTOM), ITI-57 and ITI-18 on
 * `<basePath>/registry`, over HTTPS with a mandatory client certificate. It checks the envelope
 * (SOAP 1.2, WS-Addressing), the VIHF (vihf-check.ts) and the XDS metadata the way docs/dmp-notes.md
 * §2-§7 describe, and keeps documents in memory. Refusals: SOAP Fault (HTTP 500) for envelope and
 * security problems, RegistryResponse Failure (HTTP 200) listing every business error.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { MimePart } from '../mime/multipart.js';
import { XDS_UUID } from '../xds/ebrim.js';
import {
  ACTION,
  Fault,
  NS,
  SecurityFault,
  XmlError,
  checkEnvelope,
  checkVihf,
  child,
  children,
  parseInsCx,
  parseXml,
  path,
  sealCertificatesDer,
  sender,
  text,
  unpack,
  type Endpoint,
  type Unpacked,
  type Vihf,
} from './vihf-check.js';
import { xmlEscape } from '../util/xml-text.js';

export type DmpState = 'open' | 'closed' | 'none';
export type FailureMode = 'http500' | 'busy' | 'timeout' | 'reset' | 'slow';
export interface DmpSimulatorOptions {
  host?: string;
  port?: number;
  /** Server certificate; `ca` = the CA whose client certificates are accepted (mutual TLS is required). */
  tls: { cert: Buffer; key: Buffer; ca: Buffer };
  /** PEM certificates accepted as VIHF signers. */
  sealCertificates: Buffer[];
  basePath?: string;
  /** State of a patient never set; default 'open'. */
  unknownPatients?: DmpState;
  /** typeCode values (`code|scheme`) the DMP accepts (JDV_J66); any other is refused. */
  valueSets?: { typeCodes?: Set<string> };
  /** How long 'timeout' mode holds a request before destroying it, default 60000. */
  timeoutMs?: number;
  /** Request body limit (HTTP 413 above), default 256 MiB. */
  maxBodyBytes?: number;
}
export interface SimDocument {
  entryUUID: string;
  uniqueId: string;
  patientId: string;
  patientOid: string;
  status: 'Approved' | 'Deprecated' | 'Deleted';
  replaces?: string;
  replacedBy?: string;
  typeCode: string;
  classCode: string;
  formatCode: string;
  mimeType: string;
  hash: string;
  size: number;
  confidentialityCodes: string[];
  title?: string;
  content: Buffer;
  submissionSetUniqueId: string;
  storedAt: string;
}
export interface SimRequest {
  at: string;
  action: string;
  status: 'Success' | 'Failure' | 'Fault' | 'HTTP';
  errors: { code: string; context: string }[];
}

const STATUS_URN: Record<SimDocument['status'], string> = {
  Approved: 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved',
  Deprecated: 'urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated',
  Deleted: 'urn:asip:ci-sis:2010:StatusType:Deleted',
};
const ARCHIVED = 'urn:asip:ci-sis:2010:StatusType:Archived';
const ASSOC = {
  hasMember: 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember',
  rplc: 'urn:ihe:iti:2007:AssociationType:RPLC',
  signs: 'urn:ihe:iti:2007:AssociationType:signs',
  updateStatus: 'urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus',
};
const GET_DOCUMENTS = 'urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4';
const RESPONSE = 'urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:';
const DE = XDS_UUID.documentEntry;
const SS = XDS_UUID.submissionSet;

// ---------------------------------------------------------------- errors and responses

interface RegistryError {
  code: string;
  context: string;
  location: string;
}

/** XML escape; also drops the characters XML 1.0 cannot carry (a reason may quote raw request bytes). */
const esc = xmlEscape;

function envelope(action: string, relatesTo: string, body: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<soap:Envelope xmlns:soap="${NS.soap}" xmlns:wsa="${NS.wsa}" xmlns:wsse="${NS.wsse}">` +
    `<soap:Header><wsa:Action soap:mustUnderstand="true">${esc(action)}</wsa:Action>` +
    (relatesTo ? `<wsa:RelatesTo>${esc(relatesTo)}</wsa:RelatesTo>` : '') +
    `</soap:Header><soap:Body>${body}</soap:Body></soap:Envelope>`
  );
}

function faultXml(f: Fault, relatesTo: string): string {
  const sub = f.subcode ? `<soap:Subcode><soap:Value>${esc(f.subcode)}</soap:Value></soap:Subcode>` : '';
  return envelope(
    'http://www.w3.org/2005/08/addressing/soap/fault',
    relatesTo,
    `<soap:Fault><soap:Code><soap:Value>${f.code}</soap:Value>${sub}</soap:Code>` +
      `<soap:Reason><soap:Text xml:lang="en">${esc(f.message)}</soap:Text></soap:Reason></soap:Fault>`,
  );
}

function errorList(errors: RegistryError[]): string {
  if (errors.length === 0) return '';
  const items = errors.map(
    (e) =>
      `<rs:RegistryError errorCode="${esc(e.code)}" codeContext="${esc(e.context)}" location="${esc(e.location)}" ` +
      `severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"/>`,
  );
  return `<rs:RegistryErrorList>${items.join('')}</rs:RegistryErrorList>`;
}
const responseStatus = (errors: RegistryError[]) => RESPONSE + (errors.length ? 'Failure' : 'Success');

const registryResponse = (errors: RegistryError[]): string =>
  `<rs:RegistryResponse xmlns:rs="${NS.rs}" status="${responseStatus(errors)}">` +
  `${errorList(errors)}</rs:RegistryResponse>`;

function queryResponse(errors: RegistryError[], docs: SimDocument[]): string {
  const objects = docs.map((d) => {
    const ei = (scheme: string, value: string, name: string, n: number) =>
      `<rim:ExternalIdentifier id="ei${n}-${d.entryUUID.slice(-12)}" identificationScheme="${scheme}" ` +
      `registryObject="${esc(d.entryUUID)}" value="${esc(value)}">` +
      `<rim:Name><rim:LocalizedString value="${name}"/></rim:Name></rim:ExternalIdentifier>`;
    return (
      `<rim:ExtrinsicObject id="${esc(d.entryUUID)}" mimeType="${esc(d.mimeType)}" ` +
      `objectType="${DE.objectType}" status="${STATUS_URN[d.status]}">` +
      `<rim:Slot name="hash"><rim:ValueList><rim:Value>${d.hash}</rim:Value></rim:ValueList></rim:Slot>` +
      `<rim:Slot name="size"><rim:ValueList><rim:Value>${d.size}</rim:Value></rim:ValueList></rim:Slot>` +
      ei(DE.patientId, `${d.patientId}^^^&${d.patientOid}&ISO^NH`, 'XDSDocumentEntry.patientId', 1) +
      ei(DE.uniqueId, d.uniqueId, 'XDSDocumentEntry.uniqueId', 2) +
      `</rim:ExtrinsicObject>`
    );
  });
  return (
    `<query:AdhocQueryResponse xmlns:query="${NS.query}" xmlns:rim="${NS.rim}" xmlns:rs="${NS.rs}" ` +
    `status="${responseStatus(errors)}">${errorList(errors)}` +
    `<rim:RegistryObjectList>${objects.join('')}</rim:RegistryObjectList></query:AdhocQueryResponse>`
  );
}

// ---------------------------------------------------------------- metadata reading

const attr = (el: Element | undefined, name: string): string => el?.getAttribute(name) ?? '';
function slotValues(el: Element, name: string): string[] | undefined {
  const slot = children(el, NS.rim, 'Slot').find((s) => attr(s, 'name') === name);
  const list = slot && child(slot, NS.rim, 'ValueList');
  return slot && (list ? children(list, NS.rim, 'Value').map((v) => text(v)) : []);
}
const classifications = (el: Element, scheme: string) =>
  children(el, NS.rim, 'Classification').filter((c) => attr(c, 'classificationScheme') === scheme);
const externalId = (el: Element, scheme: string): string =>
  attr(
    children(el, NS.rim, 'ExternalIdentifier').find((e) => attr(e, 'identificationScheme') === scheme),
    'value',
  ).trim();
const isCoded = (c: Element): boolean => !!attr(c, 'nodeRepresentation') && !!slotValues(c, 'codingScheme')?.[0];
const codeOf = (el: Element, scheme: string): string => attr(classifications(el, scheme)[0], 'nodeRepresentation');
const localizedName = (el: Element): string => attr(path(el, NS.rim, 'Name', 'LocalizedString'), 'value');
function cidOf(href: string): string | undefined {
  if (!href.startsWith('cid:')) return undefined;
  try {
    return decodeURIComponent(href.slice(4));
  } catch {
    return undefined;
  }
}

/** A required attribute: its name and whether the object has it. */
type Need = [string, (el: Element) => boolean];
const coded =
  (scheme: string): Need[1] =>
  (el) => {
    const cs = classifications(el, scheme);
    return cs.length > 0 && cs.every(isCoded);
  };
const slot =
  (name: string): Need[1] =>
  (el) =>
    !!slotValues(el, name)?.[0];
const ext =
  (scheme: string): Need[1] =>
  (el) =>
    !!externalId(el, scheme);
const SS_NEEDS: Need[] = [
  ['submissionTime', slot('submissionTime')],
  ['author', (el) => classifications(el, SS.author).length > 0],
  ['contentTypeCode', coded(SS.contentTypeCode)],
  ['uniqueId', ext(SS.uniqueId)],
  ['sourceId', ext(SS.sourceId)],
  ['patientId', ext(SS.patientId)],
];
const DE_NEEDS: Need[] = [
  ['classCode', coded(DE.classCode)],
  ['confidentialityCode', coded(DE.confidentialityCode)],
  ['formatCode', coded(DE.formatCode)],
  ['healthcareFacilityTypeCode', coded(DE.healthcareFacilityTypeCode)],
  ['practiceSettingCode', coded(DE.practiceSettingCode)],
  ['typeCode', coded(DE.typeCode)],
  ['patientId', ext(DE.patientId)],
  ['uniqueId', ext(DE.uniqueId)],
  ['creationTime', slot('creationTime')],
  ['languageCode', slot('languageCode')],
  ['sourcePatientId', slot('sourcePatientId')],
  ['mimeType', (el) => !!attr(el, 'mimeType')],
  ['Name (title)', (el) => !!localizedName(el)],
];
const SCHEMES = {
  ss: {
    cl: new Set<string>([SS.author, SS.contentTypeCode]),
    ei: new Set<string>([SS.uniqueId, SS.sourceId, SS.patientId]),
  },
  de: {
    cl: new Set<string>([
      DE.author,
      DE.classCode,
      DE.confidentialityCode,
      DE.eventCodeList,
      DE.formatCode,
      DE.healthcareFacilityTypeCode,
      DE.practiceSettingCode,
      DE.typeCode,
    ]),
    ei: new Set<string>([DE.patientId, DE.uniqueId]),
  },
};

/** Required attributes and known schemes of a SubmissionSet ('ss') or DocumentEntry ('de'). */
function checkObject(el: Element, kind: 'ss' | 'de', errors: RegistryError[]): void {
  const id = attr(el, 'id');
  const label = kind === 'ss' ? 'SubmissionSet' : 'DocumentEntry';
  for (const [name, has] of kind === 'ss' ? SS_NEEDS : DE_NEEDS) {
    if (!has(el))
      errors.push({
        code: 'XDSRegistryMetadataError',
        context: `${label} ${id}: required attribute ${name} is missing or incomplete`,
        location: `${id}/${name}`,
      });
  }
  for (const c of children(el, NS.rim, 'Classification')) {
    const scheme = attr(c, 'classificationScheme');
    if (kind === 'ss' && !scheme && attr(c, 'classificationNode') === SS.classificationNode) continue;
    if (!SCHEMES[kind].cl.has(scheme))
      errors.push({
        code: 'XDSRegistryMetadataError',
        context: `${label} ${id}: wrong classification scheme "${scheme}"`,
        location: id,
      });
  }
  for (const e of children(el, NS.rim, 'ExternalIdentifier')) {
    const scheme = attr(e, 'identificationScheme');
    if (!SCHEMES[kind].ei.has(scheme))
      errors.push({
        code: 'XDSRegistryMetadataError',
        context: `${label} ${id}: wrong identification scheme "${scheme}"`,
        location: id,
      });
  }
}

/** The SubmissionSet: the RegistryPackage classified by the XDSSubmissionSet node (child or sibling Classification). */
function findSubmissionSet(list: Element, errors: RegistryError[]): Element | undefined {
  const isNode = (c: Element, id: string) =>
    attr(c, 'classificationNode') === SS.classificationNode && (attr(c, 'classifiedObject') || id) === id;
  const loose = children(list, NS.rim, 'Classification');
  const packages = children(list, NS.rim, 'RegistryPackage');
  const sets = packages.filter((p) =>
    [...children(p, NS.rim, 'Classification'), ...loose].some((c) => isNode(c, attr(p, 'id'))),
  );
  for (const p of packages.filter((p) => !sets.includes(p))) {
    errors.push({
      code: 'XDSRegistryMetadataError',
      context: `RegistryPackage ${attr(p, 'id')} is not a SubmissionSet (folders are not supported)`,
      location: attr(p, 'id'),
    });
  }
  if (sets.length !== 1) {
    errors.push({
      code: 'XDSRegistryMetadataError',
      context: `exactly one SubmissionSet expected (found ${sets.length})`,
      location: 'RegistryObjectList',
    });
    return undefined;
  }
  return sets[0];
}

/** INS validity of a patientId and its agreement with the SubmissionSet and the VIHF resource-id. */
function checkPatientId(
  value: string,
  id: string,
  vihf: Vihf,
  setPatient: string | undefined,
  errors: RegistryError[],
): string | undefined {
  const ins = parseInsCx(value);
  if (!ins.ok) {
    errors.push({
      code: 'XDSUnknownPatientId',
      context: `patientId of ${id} is not an INS: ${ins.reason}`,
      location: `${id}/patientId`,
    });
    return undefined;
  }
  const key = `${ins.matricule}|${ins.oid}`;
  if (key !== `${vihf.patient.matricule}|${vihf.patient.oid}`) {
    errors.push({
      code: 'XDSPatientIdDoesNotMatch',
      context: `patientId of ${id} differs from the VIHF resource-id`,
      location: `${id}/patientId`,
    });
  } else if (setPatient !== undefined && key !== setPatient) {
    errors.push({
      code: 'XDSPatientIdDoesNotMatch',
      context: `patientId of ${id} differs from the SubmissionSet patientId`,
      location: `${id}/patientId`,
    });
  }
  return key;
}

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

// ---------------------------------------------------------------- the simulator

export class DmpSimulator {
  readonly url: string;
  readonly #server: Server;
  readonly #basePath: string;
  readonly #opts: DmpSimulatorOptions;
  readonly #seals: { der: Buffer; pem: string }[];
  #docs = new Map<string, SimDocument>();
  #setUniqueIds = new Set<string>();
  #patients = new Map<string, DmpState>();
  #requests: SimRequest[] = [];
  #failures: { mode: FailureMode; delayMs?: number }[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(server: Server, opts: DmpSimulatorOptions, seals: { der: Buffer; pem: string }[], url: string) {
    this.#server = server;
    this.#opts = opts;
    this.#basePath = opts.basePath ?? '/si-dmp-server/v2/services';
    this.#seals = seals;
    this.url = url;
  }

  static async start(opts: DmpSimulatorOptions): Promise<DmpSimulator> {
    const seals = sealCertificatesDer(opts.sealCertificates);
    if (seals.length === 0) throw new Error('DmpSimulator: sealCertificates holds no PEM certificate');
    const server = createServer({ ...opts.tls, requestCert: true, rejectUnauthorized: true });
    const host = opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => resolve());
    });
    const port = (server.address() as { port: number }).port;
    const basePath = opts.basePath ?? '/si-dmp-server/v2/services';
    const sim = new DmpSimulator(
      server,
      opts,
      seals,
      `https://${host.includes(':') ? `[${host}]` : host}:${port}${basePath}`,
    );
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      sim.#handle(req, res).catch(() => {
        // Never crash on a request: answer if still possible, else drop the connection.
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal simulator error');
        else res.destroy();
      });
    });
    return sim;
  }

  setPatient(insMatricule: string, state: DmpState): void {
    this.#patients.set(insMatricule, state);
  }
  failNext(count: number, mode: FailureMode, opts: { delayMs?: number } = {}): void {
    for (let i = 0; i < count; i++) this.#failures.push({ mode, ...opts });
  }
  documents(): SimDocument[] {
    return [...this.#docs.values()].map((d) => ({ ...d, confidentialityCodes: [...d.confidentialityCodes] }));
  }
  requests(): SimRequest[] {
    return [...this.#requests];
  }
  reset(): void {
    this.#docs.clear();
    this.#setUniqueIds.clear();
    this.#patients.clear();
    this.#requests = [];
    this.#failures = [];
  }
  async stop(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections(); // held ('timeout') and keep-alive connections
    });
  }

  #delay(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  #record(action: string, status: SimRequest['status'], errors: { code: string; context: string }[]): void {
    this.#requests.push({ at: new Date().toISOString(), action, status, errors });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!(req.socket as TLSSocket).authorized) return send(res, 403, 'text/plain', 'client certificate required');
    const pathname = new URL(req.url ?? '/', 'https://sim').pathname;
    if (pathname.startsWith(`${this.#basePath}/_sim/`))
      return this.#admin(req, res, pathname.slice(this.#basePath.length + 6));
    const endpoint =
      pathname === `${this.#basePath}/repository`
        ? 'repository'
        : pathname === `${this.#basePath}/registry`
          ? 'registry'
          : undefined;
    if (!endpoint || req.method !== 'POST') {
      const status = endpoint ? 405 : 404;
      this.#record('', 'HTTP', [{ code: String(status), context: `${req.method} ${pathname}` }]);
      return send(res, status, 'text/plain', endpoint ? 'method not allowed' : 'not found');
    }
    const body = await readBody(req, this.#opts.maxBodyBytes ?? 256 * 1024 * 1024);
    if (body === 'too-large') {
      this.#record('', 'HTTP', [{ code: '413', context: 'request body too large' }]);
      return send(res, 413, 'text/plain', 'request body too large', { connection: 'close' });
    }
    const contentType = req.headers['content-type'] ?? '';
    const failure = this.#failures.shift();
    if (failure && failure.mode !== 'slow') return this.#inject(failure.mode, endpoint, contentType, body, req, res);
    const out = this.#soap(endpoint, contentType, body);
    // 'slow': the request is done at once, its answer comes late (the caller may have given up).
    if (failure) await new Promise<void>((r) => this.#delay(failure.delayMs ?? 1000, r));
    send(res, out.status, 'application/soap+xml; charset=UTF-8', out.xml);
  }

  /** Injected failures: nothing reaches the store. */
  #inject(
    mode: FailureMode,
    endpoint: Endpoint,
    contentType: string,
    body: Buffer,
    req: IncomingMessage,
    res: ServerResponse,
  ): void {
    const ids = peekIds(endpoint, contentType, body, this.#basePath);
    if (mode === 'busy') {
      const errors = [{ code: 'XDSRegistryBusy', context: 'the registry is busy, retry later', location: '' }];
      this.#record(ids.action, 'Failure', errors);
      const answer = ids.action === ACTION.query ? queryResponse(errors, []) : registryResponse(errors);
      return send(
        res,
        200,
        'application/soap+xml; charset=UTF-8',
        envelope(`${ids.action}Response`, ids.messageId, answer),
      );
    }
    this.#record(ids.action, 'HTTP', [{ code: mode, context: 'injected failure' }]);
    if (mode === 'http500')
      return send(res, 500, 'text/html', '<html><body><h1>500 Internal Server Error</h1></body></html>');
    if (mode === 'reset') return void req.socket.destroy();
    this.#delay(this.#opts.timeoutMs ?? 60_000, () => req.socket.destroy()); // 'timeout': hold, never answer
  }

  /** One SOAP request → HTTP status and response envelope; records it. */
  #soap(endpoint: Endpoint, contentType: string, body: Buffer): { status: number; xml: string } {
    const ids = { messageId: '', action: '' };
    try {
      const un = unpack(endpoint, contentType, body);
      let doc: Document;
      try {
        doc = parseXml(un.envelope.replace(/^\uFEFF/, ''));
      } catch (e) {
        if (e instanceof XmlError) throw sender(`malformed XML: ${e.message}`);
        throw e;
      }
      const env = checkEnvelope(doc, endpoint, this.#basePath, ids);
      if (un.ctAction && un.ctAction !== env.action)
        throw sender(
          `Content-Type action "${un.ctAction}" differs from wsa:Action "${env.action}"`,
          'wsa:InvalidAddressingHeader',
        );
      const vihf = checkVihf(doc, un.envelope.replace(/^\uFEFF/, ''), env.security, this.#seals);
      let answer: string;
      let errors: RegistryError[];
      if (env.action === ACTION.query) {
        const q = this.#query(env.body, vihf);
        errors = q.errors;
        answer = queryResponse(errors, q.docs);
      } else {
        errors =
          env.action === ACTION.pnr ? this.#provideAndRegister(env.body, vihf, un) : this.#updateStatus(env.body, vihf);
        answer = registryResponse(errors);
      }
      this.#record(
        env.action,
        errors.length ? 'Failure' : 'Success',
        errors.map(({ code, context }) => ({ code, context })),
      );
      return { status: 200, xml: envelope(`${env.action}Response`, env.messageId, answer) };
    } catch (e) {
      const fault =
        e instanceof Fault
          ? e
          : e instanceof SecurityFault
            ? sender(e.message, e.subcode)
            : new Fault('soap:Receiver', undefined, `internal simulator error: ${(e as Error).message}`);
      this.#record(ids.action, 'Fault', [{ code: fault.subcode ?? fault.code, context: fault.message }]);
      return { status: 500, xml: faultXml(fault, ids.messageId) };
    }
  }

  #stateErrors(vihf: Vihf): RegistryError[] {
    const state = this.#patients.get(vihf.patient.matricule) ?? this.#opts.unknownPatients ?? 'open';
    const location = 'urn:oasis:names:tc:xacml:2.0:resource:resource-id';
    if (state === 'none') return [{ code: 'DMPNotFound', context: 'no DMP for this patient', location }];
    if (state === 'closed') return [{ code: 'DMPClosed', context: 'the DMP of this patient is closed', location }];
    return [];
  }

  /** The SubmissionSet of an ITI-41 or ITI-57: required attributes, its patient, a uniqueId never seen. */
  #submissionSet(
    list: Element,
    vihf: Vihf,
    errors: RegistryError[],
  ): { set?: Element; setId: string; setPatient?: string } {
    const set = findSubmissionSet(list, errors);
    if (!set) return { setId: '' };
    const setId = attr(set, 'id');
    checkObject(set, 'ss', errors);
    const cx = externalId(set, SS.patientId);
    const setPatient = cx ? checkPatientId(cx, setId, vihf, undefined, errors) : undefined;
    const uid = externalId(set, SS.uniqueId);
    if (uid && this.#setUniqueIds.has(uid))
      errors.push({
        code: 'XDSDuplicateUniqueIdInRegistry',
        context: `SubmissionSet uniqueId ${uid} is already registered`,
        location: `${setId}/uniqueId`,
      });
    return { set, setId, setPatient };
  }

  /** ITI-41: all checks, then (only when nothing failed) the store update. */
  #provideAndRegister(request: Element, vihf: Vihf, un: Unpacked): RegistryError[] {
    const errors = this.#stateErrors(vihf);
    const submit = child(request, NS.lcm, 'SubmitObjectsRequest');
    const list = submit && child(submit, NS.rim, 'RegistryObjectList');
    if (!list)
      return [
        ...errors,
        {
          code: 'XDSRegistryMetadataError',
          context: 'lcm:SubmitObjectsRequest/rim:RegistryObjectList is missing',
          location: 'SubmitObjectsRequest',
        },
      ];
    const { set, setId, setPatient } = this.#submissionSet(list, vihf, errors);
    const entries = children(list, NS.rim, 'ExtrinsicObject');
    if (entries.length === 0)
      errors.push({
        code: 'XDSRegistryMetadataError',
        context: 'no DocumentEntry (ExtrinsicObject) in the submission',
        location: 'RegistryObjectList',
      });
    const entryIds = new Set(entries.map((e) => attr(e, 'id')));
    const uniqueIds = new Set<string>();
    for (const e of entries) {
      const id = attr(e, 'id');
      if (attr(e, 'objectType') !== DE.objectType)
        errors.push({
          code: 'XDSRegistryMetadataError',
          context: `ExtrinsicObject ${id}: objectType must be ${DE.objectType} (stable DocumentEntry)`,
          location: `${id}/objectType`,
        });
      checkObject(e, 'de', errors);
      const cx = externalId(e, DE.patientId);
      if (cx) checkPatientId(cx, id, vihf, setPatient, errors);
      const uid = externalId(e, DE.uniqueId);
      if (uid && (this.#uniqueIdTaken(uid) || uniqueIds.has(uid))) {
        errors.push({
          code: 'XDSDuplicateUniqueIdInRegistry',
          context: `DocumentEntry uniqueId ${uid} is already registered`,
          location: `${id}/uniqueId`,
        });
      } else if (this.#docs.has(id)) {
        errors.push({
          code: 'XDSRegistryMetadataError',
          context: `entryUUID ${id} is already registered`,
          location: id,
        });
      }
      uniqueIds.add(uid);
      const typeCodes = this.#opts.valueSets?.typeCodes;
      const type = classifications(e, DE.typeCode)[0];
      const typeKey = type ? `${attr(type, 'nodeRepresentation')}|${slotValues(type, 'codingScheme')?.[0] ?? ''}` : '';
      if (typeCodes && type && !typeCodes.has(typeKey)) {
        errors.push({
          code: 'XDSRegistryMetadataError',
          context: `typeCode ${typeKey} not allowed in the DMP (JDV_J66)`,
          location: `${id}/typeCode`,
        });
      }
    }
    const contents = documentContents(request, un, entryIds, errors);
    for (const e of entries) {
      const id = attr(e, 'id');
      const content = contents.get(id);
      if (!content) continue;
      const hash = slotValues(e, 'hash')?.[0];
      if (hash !== undefined && hash.toLowerCase() !== sha1(content))
        errors.push({
          code: 'XDSNonIdenticalHash',
          context: `hash slot of ${id} does not match the document (SHA-1 ${sha1(content)})`,
          location: `${id}/hash`,
        });
      const size = slotValues(e, 'size')?.[0];
      if (size !== undefined && size !== String(content.length))
        errors.push({
          code: 'XDSNonIdenticalSize',
          context: `size slot of ${id} is ${size}, the document has ${content.length} bytes`,
          location: `${id}/size`,
        });
    }
    const replacements = this.#checkAssociations(list, setId, entryIds, vihf, errors);
    if (errors.length) return errors;

    // Commit (nothing above touched the store).
    const storedAt = new Date().toISOString();
    const newIds = new Map(
      entries.map((e) => [
        attr(e, 'id'),
        attr(e, 'id').startsWith('urn:uuid:') ? attr(e, 'id') : `urn:uuid:${randomUUID()}`,
      ]),
    );
    for (const e of entries) {
      const id = attr(e, 'id');
      const content = contents.get(id)!;
      const patient = parseInsCx(externalId(e, DE.patientId));
      const target = replacements.get(id);
      this.#docs.set(newIds.get(id)!, {
        entryUUID: newIds.get(id)!,
        uniqueId: externalId(e, DE.uniqueId),
        patientId: patient.ok ? patient.matricule : '',
        patientOid: patient.ok ? patient.oid : '',
        status: 'Approved',
        ...(target ? { replaces: target } : {}),
        typeCode: codeOf(e, DE.typeCode),
        classCode: codeOf(e, DE.classCode),
        formatCode: codeOf(e, DE.formatCode),
        mimeType: attr(e, 'mimeType'),
        hash: sha1(content),
        size: content.length,
        confidentialityCodes: classifications(e, DE.confidentialityCode).map((c) => attr(c, 'nodeRepresentation')),
        title: localizedName(e),
        content,
        submissionSetUniqueId: externalId(set!, SS.uniqueId),
        storedAt,
      });
    }
    for (const [source, target] of replacements) {
      const old = this.#docs.get(target)!;
      old.status = 'Deprecated';
      old.replacedBy = newIds.get(source)!;
    }
    this.#setUniqueIds.add(externalId(set!, SS.uniqueId));
    return [];
  }

  #uniqueIdTaken(uid: string): boolean {
    for (const d of this.#docs.values()) if (d.uniqueId === uid) return true;
    return false;
  }

  /** HasMember / RPLC / signs associations of an ITI-41; returns source entry → replaced entryUUID. */
  #checkAssociations(
    list: Element,
    setId: string,
    entryIds: Set<string>,
    vihf: Vihf,
    errors: RegistryError[],
  ): Map<string, string> {
    const members = new Set<string>();
    const replacements = new Map<string, string>();
    const targets = new Set<string>();
    const bad = (context: string, location: string) =>
      errors.push({ code: 'XDSRegistryMetadataError', context, location });
    for (const a of children(list, NS.rim, 'Association')) {
      const [type, source, target, id] = ['associationType', 'sourceObject', 'targetObject', 'id'].map((n) =>
        attr(a, n),
      ) as [string, string, string, string];
      if (type === ASSOC.hasMember) {
        if (source !== setId || !entryIds.has(target))
          bad(`HasMember association ${id} must link the SubmissionSet to a DocumentEntry of this submission`, id);
        members.add(target);
      } else if (type === ASSOC.rplc) {
        if (!entryIds.has(source))
          bad(`RPLC association ${id}: sourceObject ${source} is not a DocumentEntry of this submission`, id);
        else if (replacements.has(source)) bad(`DocumentEntry ${source} has several RPLC associations`, id);
        const old = this.#docs.get(target);
        if (!old)
          errors.push({ code: 'XDSRegistryError', context: `replaced entry unknown: ${target}`, location: target });
        else if (targets.has(target))
          errors.push({
            code: 'XDSRegistryError',
            context: `entry ${target} is replaced twice in this submission`,
            location: target,
          });
        else if (old.status !== 'Approved')
          errors.push({
            code: 'XDSRegistryError',
            context: `replaced entry is not Approved (${old.status})`,
            location: target,
          });
        else if (`${old.patientId}|${old.patientOid}` !== `${vihf.patient.matricule}|${vihf.patient.oid}`) {
          errors.push({
            code: 'XDSPatientIdDoesNotMatch',
            context: `replaced entry ${target} belongs to another patient`,
            location: target,
          });
        }
        replacements.set(source, target);
        targets.add(target);
      } else if (type !== ASSOC.signs) {
        bad(`associationType ${type} is not supported in ITI-41`, id);
      }
    }
    for (const e of entryIds) if (!members.has(e)) bad(`no HasMember association from the SubmissionSet to ${e}`, e);
    return replacements;
  }

  /** ITI-57: UpdateAvailabilityStatus (deletion). */
  #updateStatus(request: Element, vihf: Vihf): RegistryError[] {
    const errors = this.#stateErrors(vihf);
    const list = child(request, NS.rim, 'RegistryObjectList');
    if (!list)
      return [
        ...errors,
        {
          code: 'XDSRegistryMetadataError',
          context: 'rim:RegistryObjectList is missing',
          location: 'SubmitObjectsRequest',
        },
      ];
    const { set, setId, setPatient } = this.#submissionSet(list, vihf, errors);
    for (const e of children(list, NS.rim, 'ExtrinsicObject')) {
      errors.push({
        code: 'XDSRegistryError',
        context: 'DocumentEntry metadata update is not supported by the simulator (only UpdateAvailabilityStatus)',
        location: attr(e, 'id'),
      });
    }
    const updates: SimDocument[] = [];
    const associations = children(list, NS.rim, 'Association');
    if (associations.length === 0)
      errors.push({
        code: 'XDSRegistryMetadataError',
        context: 'no UpdateAvailabilityStatus association',
        location: 'RegistryObjectList',
      });
    for (const a of associations) {
      const [type, source, target, id] = ['associationType', 'sourceObject', 'targetObject', 'id'].map((n) =>
        attr(a, n),
      ) as [string, string, string, string];
      const meta = (context: string) => errors.push({ code: 'XDSRegistryMetadataError', context, location: id });
      if (type !== ASSOC.updateStatus) {
        meta(`associationType ${type} is not supported in ITI-57 (only UpdateAvailabilityStatus)`);
        continue;
      }
      if (source !== setId) meta(`association ${id}: sourceObject must be the SubmissionSet ${setId}`);
      const original = slotValues(a, 'OriginalStatus');
      const next = slotValues(a, 'NewStatus');
      if (original?.length !== 1 || next?.length !== 1) {
        meta(`association ${id}: slots OriginalStatus and NewStatus need exactly one value each`);
        continue;
      }
      const doc = this.#docs.get(target);
      if (!doc) {
        errors.push({ code: 'XDSRegistryError', context: `unknown document ${target}`, location: target });
        continue;
      }
      const docPatient = `${doc.patientId}|${doc.patientOid}`;
      if (
        docPatient !== `${vihf.patient.matricule}|${vihf.patient.oid}` ||
        (setPatient !== undefined && docPatient !== setPatient)
      ) {
        errors.push({
          code: 'XDSPatientIdDoesNotMatch',
          context: `document ${target} belongs to another patient`,
          location: target,
        });
        continue;
      }
      if (next[0] === ARCHIVED)
        errors.push({
          code: 'XDSRegistryError',
          context: `NewStatus ${ARCHIVED} is not supported by the simulator`,
          location: id,
        });
      else if (next[0] !== STATUS_URN.Deleted)
        meta(`NewStatus "${next[0]}" is not allowed (expected ${STATUS_URN.Deleted})`);
      if (original[0] !== STATUS_URN[doc.status]) {
        errors.push({
          code: 'XDSRegistryError',
          context: `status does not match: OriginalStatus ${original[0]}, current status ${STATUS_URN[doc.status]}`,
          location: target,
        });
      }
      if (updates.includes(doc)) meta(`document ${target} is updated twice in this request`);
      updates.push(doc);
    }
    if (errors.length) return errors;
    for (const doc of updates) doc.status = 'Deleted';
    this.#setUniqueIds.add(externalId(set!, SS.uniqueId));
    return [];
  }

  /** ITI-18 GetDocuments by uniqueId, for the VIHF patient only. */
  #query(request: Element, vihf: Vihf): { errors: RegistryError[]; docs: SimDocument[] } {
    const errors = this.#stateErrors(vihf);
    const returnType = attr(child(request, NS.query, 'ResponseOption'), 'returnType');
    if (returnType !== 'LeafClass')
      errors.push({
        code: 'XDSRegistryError',
        context: `unsupported returnType "${returnType}" (LeafClass only)`,
        location: 'ResponseOption',
      });
    const query = child(request, NS.rim, 'AdhocQuery');
    const queryId = query ? attr(query, 'id') : '';
    if (queryId !== GET_DOCUMENTS)
      return {
        errors: [
          ...errors,
          { code: 'XDSRegistryError', context: `unsupported query ${queryId || '(none)'}`, location: 'AdhocQuery' },
        ],
        docs: [],
      };
    const values = slotValues(query!, '$XDSDocumentEntryUniqueId') ?? [];
    const wanted = new Set<string>();
    for (const v of values) {
      if (!/^\(\s*'(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')*\s*\)$/.test(v)) {
        errors.push({
          code: 'XDSRegistryError',
          context: `malformed $XDSDocumentEntryUniqueId value ${v}`,
          location: '$XDSDocumentEntryUniqueId',
        });
      }
      for (const m of v.matchAll(/'((?:[^']|'')*)'/g)) wanted.add(m[1]!.replace(/''/g, "'"));
    }
    if (wanted.size === 0)
      errors.push({
        code: 'XDSStoredQueryParamNumber',
        context: 'GetDocuments needs $XDSDocumentEntryUniqueId',
        location: '$XDSDocumentEntryUniqueId',
      });
    if (errors.length) return { errors, docs: [] };
    const docs = [...this.#docs.values()].filter(
      (d) => wanted.has(d.uniqueId) && d.patientId === vihf.patient.matricule && d.patientOid === vihf.patient.oid,
    );
    return { errors, docs };
  }

  /** JSON admin surface for standalone use (same client-certificate requirement). */
  async #admin(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    const json = (status: number, value: unknown) => send(res, status, 'application/json', JSON.stringify(value));
    if (req.method === 'GET' && route === 'documents') {
      return json(
        200,
        this.documents().map(({ content, ...d }) => ({ ...d, contentLength: content.length })),
      );
    }
    if (req.method !== 'POST') return json(404, { error: 'not found' });
    const raw = await readBody(req, 1024 * 1024);
    let input: Record<string, unknown> = {};
    try {
      if (raw === 'too-large') return json(413, { error: 'body too large' });
      if (raw.length) input = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      return json(400, { error: 'body is not JSON' });
    }
    if (route === 'patients') {
      if (typeof input.ins !== 'string' || !input.ins || !['open', 'closed', 'none'].includes(input.state as string)) {
        return json(400, { error: 'expected { "ins": "<matricule>", "state": "open" | "closed" | "none" }' });
      }
      this.setPatient(input.ins, input.state as DmpState);
      return json(200, { ok: true });
    }
    if (route === 'fail') {
      const modes: FailureMode[] = ['http500', 'busy', 'timeout', 'reset', 'slow'];
      if (!Number.isInteger(input.count) || (input.count as number) < 1 || !modes.includes(input.mode as FailureMode)) {
        return json(400, {
          error: `expected { "count": <n ≥ 1>, "mode": ${modes.map((m) => `"${m}"`).join(' | ')}, "delayMs"?: <ms> }`,
        });
      }
      this.failNext(
        input.count as number,
        input.mode as FailureMode,
        typeof input.delayMs === 'number' ? { delayMs: input.delayMs } : {},
      );
      return json(200, { ok: true });
    }
    if (route === 'reset') {
      this.reset();
      return json(200, { ok: true });
    }
    return json(404, { error: 'not found' });
  }
}

/** xds:Document contents by entry id (xop:Include → MIME part, or inline base64), with their errors. */
function documentContents(
  request: Element,
  un: Unpacked,
  entryIds: Set<string>,
  errors: RegistryError[],
): Map<string, Buffer> {
  const contents = new Map<string, Buffer>();
  const used = new Set<MimePart>();
  for (const d of children(request, NS.xds, 'Document')) {
    const id = attr(d, 'id');
    if (!entryIds.has(id)) {
      errors.push({
        code: 'XDSRegistryMetadataError',
        context: `xds:Document ${id} matches no DocumentEntry`,
        location: id,
      });
      continue;
    }
    if (contents.has(id)) {
      errors.push({ code: 'XDSRegistryMetadataError', context: `several xds:Document for ${id}`, location: id });
      continue;
    }
    const include = child(d, NS.xop, 'Include');
    if (include) {
      const href = attr(include, 'href');
      const cid = cidOf(href);
      const part = cid === undefined ? undefined : un.parts.get(cid);
      if (!part || part === un.root) {
        errors.push({
          code: 'XDSMissingDocument',
          context: `xop:Include href "${href}" of ${id} names no MIME part`,
          location: id,
        });
        continue;
      }
      used.add(part);
      contents.set(id, part.body);
    } else {
      const b64 = text(d).replace(/\s+/g, '');
      if (!b64 || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
        errors.push({
          code: 'XDSMissingDocument',
          context: `xds:Document ${id} has neither xop:Include nor base64 content`,
          location: id,
        });
        continue;
      }
      contents.set(id, Buffer.from(b64, 'base64'));
    }
  }
  for (const [cid, part] of un.parts) {
    if (part !== un.root && !used.has(part))
      errors.push({
        code: 'XDSRepositoryError',
        context: `MIME part <${cid}> is not referenced by any xds:Document`,
        location: cid,
      });
  }
  for (const id of entryIds) {
    if (!contents.has(id) && !errors.some((e) => e.location === id && e.code === 'XDSMissingDocument')) {
      errors.push({ code: 'XDSMissingDocument', context: `no xds:Document for DocumentEntry ${id}`, location: id });
    }
  }
  return contents;
}

/** Best effort MessageID / Action of a request the simulator will not process (injected failures). */
function peekIds(
  endpoint: Endpoint,
  contentType: string,
  body: Buffer,
  basePath: string,
): { messageId: string; action: string } {
  const ids = { messageId: '', action: '' };
  try {
    checkEnvelope(parseXml(unpack(endpoint, contentType, body).envelope), endpoint, basePath, ids);
  } catch {
    // whatever was read before the first problem is enough
  }
  return ids;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c); // above the limit: keep draining, answer 413 at the end
    });
    req.on('end', () => resolve(size > limit ? 'too-large' : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
