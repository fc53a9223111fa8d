/**
 * CDA R2 header reader.
 *
 * A CDA N3 body can weigh megabytes (and an N1 body carries the whole PDF in base64), while everything the
 * PFI needs is in the header. So the document is read in two passes:
 *  1. a light scanner walks the tags of the whole document (comments, CDATA and PIs skipped, attribute values
 *     honoured), checks that they nest and close (a truncated or garbled document is refused), and notes where
 *     the body starts: the `component` child of ClinicalDocument, then its structuredBody / nonXMLBody
 *     (for a nonXMLBody, the start tag of its `text`);
 *  2. only the header (the text up to that point, plus the end tags of the elements still open) is validated
 *     and parsed by fast-xml-parser, then mapped with namespace resolution (any prefix bound to
 *     urn:hl7-org:v3 works, e.g. `c:ClinicalDocument`).
 *
 * The "autoprésentable" CI-SIS documents (an XSLT stylesheet holding the CDA in `data:Contenu`,
 * urn:asip-sante:ci-sis) are accepted: the ClinicalDocument inside is read.
 */
import { isUtf8 } from 'node:buffer';
import { xmlReader, XmlError } from '../xml/read.js';
import { isInsOid } from '../identity/ins.js';
import { PfiError } from '../errors.js';

export const CDA_NS = 'urn:hl7-org:v3';
const XSLT_NS = 'http://www.w3.org/1999/XSL/Transform';
const CISIS_NS = 'urn:asip-sante:ci-sis';
export interface Code {
  code?: string;
  codeSystem?: string;
  displayName?: string;
  codeSystemName?: string;
}

export interface InstanceId {
  root: string;
  extension?: string;
}

export interface Organization {
  id?: InstanceId;
  name?: string;
  standardIndustryClassCode?: Code;
}

export interface CdaAuthor {
  time?: string;
  person?: { id?: InstanceId; family?: string; given?: string[]; functionCode?: Code; specialty?: Code };
  organization?: Organization;
}

export interface CdaHeader {
  id: InstanceId;
  setId?: InstanceId;
  versionNumber?: number;
  code: Code;
  title?: string;
  effectiveTime?: string;
  confidentialityCode?: Code;
  languageCode?: string;
  templateIds: InstanceId[];
  recordTarget: {
    ids: InstanceId[];
    /** The id whose root is one of the INS OIDs (identity/ins.ts). */
    ins?: { matricule: string; oid: string };
    /** family with qualifier BR. */
    birthName?: string;
    /** family with qualifier CL (CI-SIS 2022+) or SP (older), else an unqualified family. */
    usedName?: string;
    /**
     * given names of the birth certificate: the unqualified given(s) (CI-SIS: one space-separated list),
     * else the BR ones.
     */
    givenNames: string[];
    /** given with qualifier BR: first given name of the birth certificate. */
    firstGivenName?: string;
    /** given with qualifier CL: given name used. */
    usedGivenName?: string;
    sex?: string;
    birthDate?: string;
    /** birthplace/place/addr/county (INSEE code of the birth place). */
    birthPlaceCode?: string;
  };
  authors: CdaAuthor[];
  legalAuthenticator?: { time?: string; id?: InstanceId; family?: string; given?: string[] };
  custodian?: { id?: InstanceId; name?: string };
  /** inFulfillmentOf/order/id: the orders (requests) the document answers. */
  orderIds: InstanceId[];
  /** relatedDocument[@typeCode=RPLC]/parentDocument/id: the document this version replaces. */
  replaces: InstanceId[];
  serviceEvents: { code?: Code; start?: string; end?: string; performerOrganization?: Organization }[];
  encounter?: {
    code?: Code;
    start?: string;
    end?: string;
    healthCareFacilityCode?: Code;
    /** healthCareFacility id and location name (else its serviceProviderOrganization). */
    locationOrganization?: { id?: InstanceId; name?: string };
  };
  body: { kind: 'nonXMLBody'; mediaType?: string; representation?: string } | { kind: 'structuredBody' };
  /** True for a CI-SIS "autoprésentable" document (CDA wrapped in an XSLT stylesheet). */
  selfPresenting?: boolean;
}

export type CdaErrorKind = 'not-xml' | 'not-cda' | 'missing';

export class CdaError extends PfiError {
  override name = 'CdaError';
  constructor(
    readonly kind: CdaErrorKind,
    message: string,
  ) {
    super('cda', message);
  }
}

/** Reads the header of a CDA R2 document; throws CdaError when it is not one. */
export function readCdaHeader(xml: Buffer | string): CdaHeader {
  let headerXml: string;
  let scan: Scan;
  const utf8 = typeof xml === 'string' ? undefined : utf8Body(xml);
  if (utf8) {
    // Scan a latin1 view (one char per byte, built by a plain copy): markup is ASCII and UTF-8 multi-byte
    // sequences hold no ASCII byte, so offsets are byte offsets; only the header is decoded as UTF-8.
    scan = scanDocument(utf8.toString('latin1'));
    headerXml = utf8.toString('utf8', 0, scan.cut);
  } else {
    const text = typeof xml === 'string' ? (xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml) : decode(xml);
    scan = scanDocument(text);
    headerXml = text.slice(0, scan.cut);
  }
  headerXml += scan.openAtCut.map((n) => `</${n}>`).join('');
  let nodes: PoNode[];
  try {
    nodes = read(headerXml) as PoNode[];
  } catch (e) {
    if (e instanceof XmlError) throw new CdaError('not-xml', `Not a CDA document: ${e.message}`);
    throw e;
  }
  const root = toElements(nodes, new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]))[0];
  if (!root) throw new CdaError('not-xml', 'Not a CDA document: no root element');
  let cd = root;
  let selfPresenting = false;
  if (root.ns === XSLT_NS && root.local === 'stylesheet') {
    const inner = child(child(root, 'Contenu', CISIS_NS), 'ClinicalDocument', undefined);
    if (!inner)
      throw new CdaError('not-cda', 'Not a CDA document: XSLT stylesheet without data:Contenu/ClinicalDocument');
    cd = inner;
    selfPresenting = true;
  }
  if (cd.local !== 'ClinicalDocument' || cd.ns !== CDA_NS) {
    const where = cd.ns ? `{${cd.ns}}${cd.local}` : `${cd.local} (no namespace)`;
    throw new CdaError(
      'not-cda',
      `Not a CDA document: root element is ${where}, expected ClinicalDocument in ${CDA_NS}`,
    );
  }
  const header = mapHeader(cd, scan.body);
  if (selfPresenting) header.selfPresenting = true;
  return header;
}

// ---------------------------------------------------------------------------------------------------------
// Decoding

/** The bytes of a UTF-8 document (BOM removed), or undefined when another encoding is declared. */
function utf8Body(buf: Buffer): Buffer | undefined {
  if (buf.length >= 2 && ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff)))
    return undefined;
  const body = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? buf.subarray(3) : buf;
  const label = declaredEncoding(body)?.toLowerCase();
  if (label && label !== 'utf-8' && label !== 'utf8') return undefined;
  if (!isUtf8(body)) throw new CdaError('not-xml', 'Not a CDA document: invalid UTF-8 bytes');
  return body;
}

function declaredEncoding(buf: Buffer): string | undefined {
  const m = /^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(buf.subarray(0, 200).toString('latin1'));
  return m?.[1];
}

/** Other encodings than UTF-8 (UTF-16 with a BOM, ISO-8859-1, ...): decoded whole with TextDecoder. */
function decode(buf: Buffer): string {
  let label: string;
  let body = buf;
  if (buf[0] === 0xff && buf[1] === 0xfe) [label, body] = ['utf-16le', buf.subarray(2)];
  else if (buf[0] === 0xfe && buf[1] === 0xff) [label, body] = ['utf-16be', buf.subarray(2)];
  else label = declaredEncoding(buf) ?? 'utf-8';
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    throw new CdaError('not-xml', `Not a CDA document: unsupported XML encoding '${label}'`);
  }
  try {
    return decoder.decode(body);
  } catch {
    throw new CdaError('not-xml', `Not a CDA document: bytes invalid in the encoding '${label}'`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Pass 1: tag scanner

interface Scan {
  /** Offset where the header text ends (after the body's first start tag), or the whole text. */
  cut: number;
  /** Qualified names of the elements open at cut, innermost first. */
  openAtCut: string[];
  body?: { kind: 'structuredBody' | 'nonXMLBody'; textTag?: string };
}

const NAME = /[^\s/>]+/y;
/** Rest of a start tag after its name: attributes (quoted values may hold '>') up to '>' or '/>'. */
const TAG_REST = /(?:[^>"'<]|"[^"]*"|'[^']*')*>/y;

function localOf(qname: string): string {
  const i = qname.indexOf(':');
  return i < 0 ? qname : qname.slice(i + 1);
}

function lineOf(text: string, at: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

function notXml(text: string, at: number, what: string): CdaError {
  return new CdaError('not-xml', `Not a CDA document: not well-formed XML (${what}, line ${lineOf(text, at)})`);
}

function scanDocument(text: string): Scan {
  const stack: string[] = [];
  let rootSeen = false;
  let cdDepth = -1; // depth of ClinicalDocument's children
  let cut = -1;
  let openAtCut: string[] = [];
  let body: Scan['body'];
  // 0: looking for the body component, 1: in it, want the body element, 2: in nonXMLBody, want text, 3: done
  let state = 0;
  const len = text.length;
  let i = text.indexOf('<');
  const leading = text.slice(0, i < 0 ? len : i);
  if (/\S/.test(leading)) {
    throw new CdaError('not-xml', `Not a CDA document: not XML (starts with '${leading.trim().slice(0, 40)}')`);
  }
  while (i >= 0 && i < len) {
    const c = text.charCodeAt(i + 1);
    if (c === 33 /* ! */) {
      if (text.startsWith('<!--', i)) {
        const end = text.indexOf('-->', i + 4);
        if (end < 0) throw notXml(text, i, 'unterminated comment');
        i = text.indexOf('<', end + 3);
      } else if (text.startsWith('<![CDATA[', i)) {
        if (!stack.length) throw notXml(text, i, 'CDATA outside the root element');
        const end = text.indexOf(']]>', i + 9);
        if (end < 0) throw notXml(text, i, 'unterminated CDATA section');
        i = text.indexOf('<', end + 3);
      } else if (text.startsWith('<!DOCTYPE', i)) {
        throw new CdaError('not-cda', 'Not a CDA document: a DOCTYPE declaration is not allowed in a CDA document');
      } else {
        throw notXml(text, i, "unexpected '<!'");
      }
      continue;
    }
    if (c === 63 /* ? */) {
      const end = text.indexOf('?>', i + 2);
      if (end < 0) throw notXml(text, i, 'unterminated processing instruction');
      i = text.indexOf('<', end + 2);
      continue;
    }
    if (c === 47 /* / */) {
      NAME.lastIndex = i + 2;
      const m = NAME.exec(text);
      const name = m?.[0] ?? '';
      const end = text.indexOf('>', i + 2);
      if (end < 0 || /\S/.test(text.slice(i + 2 + name.length, end)))
        throw notXml(text, i, `malformed end tag </${name}`);
      const open = stack.pop();
      if (open !== name) {
        throw notXml(
          text,
          i,
          open ? `end tag </${name}> does not match <${open}>` : `end tag </${name}> without start tag`,
        );
      }
      i = text.indexOf('<', end + 1);
      continue;
    }
    // Start tag.
    NAME.lastIndex = i + 1;
    const m = NAME.exec(text);
    if (!m) throw notXml(text, i, "'<' not followed by a name");
    const name = m[0];
    TAG_REST.lastIndex = i + 1 + name.length;
    const r = TAG_REST.exec(text);
    if (!r) throw notXml(text, i, `unterminated start tag <${name}`);
    const tagEnd = TAG_REST.lastIndex;
    const selfClosing = text.charCodeAt(tagEnd - 2) === 47; /* '/>' */
    const local = localOf(name);
    if (!stack.length) {
      if (rootSeen) throw notXml(text, i, `second root element <${name}>`);
      rootSeen = true;
      if (local !== 'ClinicalDocument' && local !== 'stylesheet') {
        throw new CdaError(
          'not-cda',
          `Not a CDA document: root element is <${name}>, expected ClinicalDocument in ${CDA_NS}`,
        );
      }
    }
    const depth = stack.length; // depth of this element (root = 0)
    if (cdDepth < 0 && local === 'ClinicalDocument') cdDepth = depth + 1;
    else if (cdDepth >= 0 && state < 3) {
      if (state === 0 && depth === cdDepth && local === 'component') state = 1;
      else if (state === 1 && depth === cdDepth + 1) {
        if (local === 'nonXMLBody') {
          body = { kind: 'nonXMLBody' };
          state = selfClosing ? 3 : 2;
        } else {
          if (local === 'structuredBody') body = { kind: 'structuredBody' };
          state = 3;
        }
        if (state === 3) cut = tagEnd;
      } else if (state === 2 && depth === cdDepth + 2 && local === 'text') {
        state = 3;
        cut = tagEnd;
      } else if (state === 2 && depth <= cdDepth + 1) {
        state = 3; // nonXMLBody without text: cut right here
        cut = i;
      }
      if (state === 3) {
        openAtCut = stack.slice().reverse();
        if (!selfClosing && cut === tagEnd) openAtCut.unshift(name);
      }
    }
    if (!selfClosing) stack.push(name);
    i = text.indexOf('<', tagEnd);
  }
  if (stack.length) throw notXml(text, len, `document truncated: <${stack[stack.length - 1]}> is not closed`);
  if (!rootSeen) throw new CdaError('not-xml', 'Not a CDA document: not XML (no root element)');
  if (cdDepth < 0) throw new CdaError('not-cda', 'Not a CDA document: no ClinicalDocument element');
  if (cut < 0) return { cut: len, openAtCut: [], body };
  return { cut, openAtCut, body };
}

// ---------------------------------------------------------------------------------------------------------
// Pass 2: fast-xml-parser (preserveOrder) to a small namespace-resolved tree

type PoNode = Record<string, unknown> & { ':@'?: Record<string, string> };

// Prefixes kept: namespaces are resolved here (toElements), a CDA may use any prefix.
const read = xmlReader({ ordered: true, attributePrefix: '', dropPrefixes: false });

interface El {
  ns: string | undefined;
  local: string;
  /** Attributes by qualified name (xmlns declarations removed). */
  attrs: Record<string, string>;
  kids: El[];
  text: string;
}

function toElements(nodes: PoNode[], scope: Map<string, string>): El[] {
  const out: El[] = [];
  for (const node of nodes) {
    const key = Object.keys(node).find((k) => k !== ':@');
    if (!key || key === '#text' || key.startsWith('?') || key === '#comment') continue;
    const raw = node[':@'] ?? {};
    let own = scope;
    const attrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) {
        if (own === scope) own = new Map(scope);
        own.set(k === 'xmlns' ? '' : k.slice(6), String(v));
      } else attrs[k] = String(v);
    }
    const colon = key.indexOf(':');
    const prefix = colon < 0 ? '' : key.slice(0, colon);
    const children = (node[key] as PoNode[] | undefined) ?? [];
    let text = '';
    for (const c of children) if ('#text' in c) text += String(c['#text']);
    out.push({
      ns: own.get(prefix) || undefined,
      local: colon < 0 ? key : key.slice(colon + 1),
      attrs,
      kids: toElements(children, own),
      text,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Mapping

/** First child with this local name in ns (CDA namespace by default; undefined: any namespace). */
function child(el: El | undefined, local: string, ns: string | undefined = CDA_NS): El | undefined {
  return el?.kids.find((k) => k.local === local && (ns === undefined || k.ns === ns));
}

function children(el: El | undefined, local: string): El[] {
  return el ? el.kids.filter((k) => k.local === local && k.ns === CDA_NS) : [];
}

function path(el: El | undefined, ...locals: string[]): El | undefined {
  let cur = el;
  for (const l of locals) cur = child(cur, l);
  return cur;
}

function attr(el: El | undefined, name: string): string | undefined {
  const v = el?.attrs[name];
  return v === undefined || v === '' ? undefined : v;
}

function textOf(el: El | undefined): string | undefined {
  const t = el?.text.trim();
  return t ? t : undefined;
}

function ii(el: El | undefined): InstanceId | undefined {
  const root = attr(el, 'root');
  if (!root) return undefined;
  const ext = attr(el, 'extension');
  return ext === undefined ? { root } : { root, extension: ext };
}

function code(el: El | undefined): Code | undefined {
  if (!el) return undefined;
  const c: Code = {};
  for (const k of ['code', 'codeSystem', 'displayName', 'codeSystemName'] as const) {
    const v = attr(el, k);
    if (v !== undefined) c[k] = v;
  }
  return Object.keys(c).length ? c : undefined;
}

/** IVL_TS: low/high, or a single value (start). */
function interval(el: El | undefined): { start?: string; end?: string } {
  const start = attr(child(el, 'low'), 'value') ?? attr(el, 'value');
  const end = attr(child(el, 'high'), 'value');
  return compact({ start, end });
}

function organization(el: El | undefined): Organization | undefined {
  if (!el) return undefined;
  const o = compact({
    id: ii(child(el, 'id')),
    name: textOf(child(el, 'name')),
    standardIndustryClassCode: code(child(el, 'standardIndustryClassCode')),
  });
  return Object.keys(o).length ? o : undefined;
}

function personName(person: El | undefined): { family?: string; given?: string[] } {
  const name = child(person, 'name');
  if (!name) return {};
  const given = children(name, 'given')
    .map(textOf)
    .filter((g): g is string => !!g);
  return compact({ family: textOf(child(name, 'family')), given: given.length ? given : undefined });
}

function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function hasQualifier(el: El, q: string): boolean {
  return (attr(el, 'qualifier') ?? '').split(/\s+/).includes(q);
}

function mapHeader(cd: El, body: Scan['body']): CdaHeader {
  const id = ii(child(cd, 'id'));
  if (!id) throw new CdaError('missing', 'Invalid CDA document: ClinicalDocument/id (with a root) is missing');
  const docCode = code(child(cd, 'code'));
  if (!docCode?.code) throw new CdaError('missing', 'Invalid CDA document: ClinicalDocument/code is missing');
  if (!body)
    throw new CdaError(
      'missing',
      'Invalid CDA document: no structuredBody or nonXMLBody in ClinicalDocument/component',
    );

  const version = attr(child(cd, 'versionNumber'), 'value');
  const h: CdaHeader = {
    id,
    code: docCode,
    templateIds: children(cd, 'templateId')
      .map(ii)
      .filter((x): x is InstanceId => !!x),
    recordTarget: recordTarget(child(cd, 'recordTarget')),
    authors: children(cd, 'author').map(author),
    serviceEvents: children(cd, 'documentationOf')
      .map((d) => child(d, 'serviceEvent'))
      .filter((s): s is El => !!s)
      .map(serviceEvent),
    orderIds: children(cd, 'inFulfillmentOf')
      .map((f) => ii(path(f, 'order', 'id')))
      .filter((x): x is InstanceId => !!x),
    replaces: children(cd, 'relatedDocument')
      .filter((r) => attr(r, 'typeCode') === 'RPLC')
      .map((r) => ii(path(r, 'parentDocument', 'id')))
      .filter((x): x is InstanceId => !!x),
    body: { kind: 'structuredBody' },
  };
  const setId = ii(child(cd, 'setId'));
  if (setId) h.setId = setId;
  if (version !== undefined && /^\d+$/.test(version)) h.versionNumber = Number(version);
  const title = textOf(child(cd, 'title'));
  if (title) h.title = title;
  const effectiveTime = attr(child(cd, 'effectiveTime'), 'value');
  if (effectiveTime) h.effectiveTime = effectiveTime;
  const conf = code(child(cd, 'confidentialityCode'));
  if (conf) h.confidentialityCode = conf;
  const lang = attr(child(cd, 'languageCode'), 'code');
  if (lang) h.languageCode = lang;

  const la = child(cd, 'legalAuthenticator');
  if (la) {
    const entity = child(la, 'assignedEntity');
    h.legalAuthenticator = compact({
      time: attr(child(la, 'time'), 'value'),
      id: ii(child(entity, 'id')),
      ...personName(child(entity, 'assignedPerson')),
    });
  }
  const custOrg = path(cd, 'custodian', 'assignedCustodian', 'representedCustodianOrganization');
  if (custOrg) h.custodian = compact({ id: ii(child(custOrg, 'id')), name: textOf(child(custOrg, 'name')) });

  const enc = path(cd, 'componentOf', 'encompassingEncounter');
  if (enc) {
    const hcf = path(enc, 'location', 'healthCareFacility');
    const provider = child(hcf, 'serviceProviderOrganization');
    const loc = compact({
      id: ii(child(hcf, 'id')) ?? ii(child(provider, 'id')),
      name: textOf(path(hcf, 'location', 'name')) ?? textOf(child(provider, 'name')),
    });
    h.encounter = compact({
      code: code(child(enc, 'code')),
      ...interval(child(enc, 'effectiveTime')),
      healthCareFacilityCode: code(child(hcf, 'code')),
      locationOrganization: Object.keys(loc).length ? loc : undefined,
    });
  }

  if (body.kind === 'nonXMLBody') {
    const text = path(cd, 'component', 'nonXMLBody', 'text');
    h.body = compact({
      kind: 'nonXMLBody' as const,
      mediaType: attr(text, 'mediaType'),
      representation: attr(text, 'representation'),
    });
  }
  return h;
}

function recordTarget(rt: El | undefined): CdaHeader['recordTarget'] {
  const role = child(rt, 'patientRole');
  const ids = children(role, 'id')
    .map(ii)
    .filter((x): x is InstanceId => !!x);
  const patient = child(role, 'patient');
  const out: CdaHeader['recordTarget'] = { ids, givenNames: [] };
  const insId = ids.find((x) => isInsOid(x.root) && x.extension);
  if (insId) out.ins = { matricule: insId.extension!, oid: insId.root };
  const name = child(patient, 'name');
  if (name) {
    let unqualifiedFamily: string | undefined;
    for (const f of children(name, 'family')) {
      const t = textOf(f);
      if (!t) continue;
      if (hasQualifier(f, 'BR')) out.birthName ??= t;
      else if (hasQualifier(f, 'CL') || hasQualifier(f, 'SP')) out.usedName ??= t;
      else unqualifiedFamily ??= t;
    }
    if (unqualifiedFamily && !out.usedName) out.usedName = unqualifiedFamily;
    const plain: string[] = [];
    const birth: string[] = [];
    for (const g of children(name, 'given')) {
      const t = textOf(g);
      if (!t) continue;
      if (hasQualifier(g, 'BR')) birth.push(t);
      else if (hasQualifier(g, 'CL')) out.usedGivenName ??= t;
      else if (!attr(g, 'qualifier')) plain.push(t);
    }
    out.givenNames = plain.length ? plain : birth;
    if (birth[0]) out.firstGivenName = birth[0];
  }
  const sex = attr(child(patient, 'administrativeGenderCode'), 'code');
  if (sex) out.sex = sex;
  const birthDate = attr(child(patient, 'birthTime'), 'value');
  if (birthDate) out.birthDate = birthDate;
  const county = textOf(path(patient, 'birthplace', 'place', 'addr', 'county'));
  if (county) out.birthPlaceCode = county;
  return out;
}

function author(a: El): CdaAuthor {
  const aa = child(a, 'assignedAuthor');
  const out: CdaAuthor = {};
  const time = attr(child(a, 'time'), 'value');
  if (time) out.time = time;
  const person = child(aa, 'assignedPerson');
  const p = compact({
    id: ii(child(aa, 'id')),
    ...personName(person),
    functionCode: code(child(a, 'functionCode')),
    specialty: code(child(aa, 'code')),
  });
  if (Object.keys(p).length) out.person = p;
  const org = organization(child(aa, 'representedOrganization'));
  if (org) out.organization = org;
  return out;
}

function serviceEvent(se: El): CdaHeader['serviceEvents'][number] {
  return compact({
    code: code(child(se, 'code')),
    ...interval(child(se, 'effectiveTime')),
    performerOrganization: organization(path(se, 'performer', 'assignedEntity', 'representedOrganization')),
  });
}
