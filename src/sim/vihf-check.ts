/**
 * DMP simulator, request-level checks: XML helpers, the transport and envelope checks (SOAP 1.2 / MTOM
 * content types, WS-Addressing headers: docs/dmp-notes.md §2) and the checks of the VIHF (the SAML 2.0
 * assertion in wsse:Security, §3). Failures throw Fault or SecurityFault; the simulator answers them as
 * SOAP 1.2 Faults (soap:Sender; Subcode wsse:InvalidSecurity for a malformed/missing element or
 * attribute, wsse:FailedAuthentication for a bad signature or an untrusted certificate).
 */
import { X509Certificate } from 'node:crypto';
import { MimeError, parseContentType, parseMultipart, type MimePart } from '../mime/multipart.js';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { checkIns } from '../identity/ins.js';

export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  soap11: 'http://schemas.xmlsoap.org/soap/envelope/',
  wsa: 'http://www.w3.org/2005/08/addressing',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  hl7: 'urn:hl7-org:v3',
  rim: 'urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0',
  lcm: 'urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0',
  rs: 'urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0',
  query: 'urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0',
  xds: 'urn:ihe:iti:xds-b:2007',
  xop: 'http://www.w3.org/2004/08/xop/include',
} as const;

const ALG = {
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
};

export const INS_OID_LIST = [
  '1.2.250.1.213.1.4.8',
  '1.2.250.1.213.1.4.9',
  '1.2.250.1.213.1.4.10',
  '1.2.250.1.213.1.4.11',
];
const ROLE_ATTR = 'urn:oasis:names:tc:xacml:2.0:subject:role';
const PURPOSE_ATTR = 'urn:oasis:names:tc:xspa:1.0:subject:purposeofuse';
const RESOURCE_ATTR = 'urn:oasis:names:tc:xacml:2.0:resource:resource-id';
const MAX_SKEW_MS = 10 * 60_000;

export class XmlError extends Error {}

/** Strict parse: xmldom reports unclosed tags etc. as warnings, so every report is an error here. */
export function parseXml(text: string): Document {
  const fail = (msg: string): never => {
    throw new XmlError(
      String(msg)
        .replace(/\s+/g, ' ')
        .replace(/@#\[line.*$/, '')
        .trim(),
    );
  };
  let doc: Document;
  try {
    doc = new DOMParser({ errorHandler: { warning: fail, error: fail, fatalError: fail } }).parseFromString(
      text,
      'text/xml',
    );
  } catch (e) {
    throw e instanceof XmlError ? e : new XmlError((e as Error).message);
  }
  if (!doc?.documentElement) throw new XmlError('no root element');
  if (doc.doctype) throw new XmlError('DOCTYPE is not allowed');
  return doc;
}

export function elements(parent: Node): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) if (n.nodeType === 1) out.push(n as Element);
  return out;
}
export const is = (el: Element | undefined, ns: string, local: string): boolean =>
  !!el && el.namespaceURI === ns && el.localName === local;
export const children = (parent: Node, ns: string, local: string): Element[] =>
  elements(parent).filter((e) => is(e, ns, local));
export const child = (parent: Node, ns: string, local: string): Element | undefined => children(parent, ns, local)[0];
export const text = (el: Element | undefined): string => (el?.textContent ?? '').trim();
/** The first element at the end of a child path, e.g. path(a, NS.saml, 'Subject', 'NameID'). */
export function path(el: Element | undefined, ns: string, ...locals: string[]): Element | undefined {
  for (const local of locals) el = el && child(el, ns, local);
  return el;
}

export type FaultSubcode = 'wsse:InvalidSecurity' | 'wsse:FailedAuthentication';
export class SecurityFault extends Error {
  constructor(
    readonly subcode: FaultSubcode,
    reason: string,
  ) {
    super(reason);
  }
}
const invalid = (reason: string): never => {
  throw new SecurityFault('wsse:InvalidSecurity', reason);
};
const failedAuth = (reason: string): never => {
  throw new SecurityFault('wsse:FailedAuthentication', reason);
};

/**
 * The patient of a CX `matricule^^^&oid&ISO^NH`, or why it is not an INS. The reasons never quote the
 * matricule: they travel back to the client, which may journal them.
 */
export type ParsedIns = { ok: true; matricule: string; oid: string } | { ok: false; reason: string };
export function parseInsCx(value: string): ParsedIns {
  const m = /^([^^&]*)\^\^\^&([^&^]*)&ISO\^([^^]*)$/.exec(value);
  if (!m) return { ok: false, reason: 'not a CX matricule^^^&oid&ISO^NH' };
  const [, matricule, oid, type] = m as unknown as [string, string, string, string];
  if (type !== 'NH') return { ok: false, reason: `identifier type ${type || '(none)'} is not NH` };
  if (!INS_OID_LIST.includes(oid))
    return { ok: false, reason: `assigning authority ${oid || '(none)'} is not an INS OID` };
  if (!/^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$/.test(matricule)) {
    return {
      ok: false,
      reason: 'the matricule must be 15 characters: 13 (digits, 2A/2B for Corsica) and a 2-digit key',
    };
  }
  // The engine's own rule (src/identity/ins.ts): NIR key for the NIR OIDs.
  return checkIns(matricule, oid).ok
    ? { ok: true, matricule, oid }
    : { ok: false, reason: 'the matricule key is wrong' };
}

export interface Vihf {
  patient: { matricule: string; oid: string };
  nameId: string;
  attributes: Map<string, Element[]>;
}

/** PEM (one or several certificates per Buffer) → DER bytes, to compare with KeyInfo. */
export function sealCertificatesDer(pems: Buffer[]): { der: Buffer; pem: string }[] {
  const out: { der: Buffer; pem: string }[] = [];
  for (const pem of pems) {
    for (const block of pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ??
      []) {
      const cert = new X509Certificate(block);
      out.push({ der: cert.raw, pem: cert.toString() });
    }
  }
  return out;
}

function assertionFrame(assertion: Element, now: number): string {
  if (assertion.getAttribute('Version') !== '2.0')
    invalid(`Assertion/@Version must be "2.0" (got "${assertion.getAttribute('Version') ?? ''}")`);
  const id = assertion.getAttribute('ID') ?? '';
  if (!id) invalid('Assertion/@ID is missing');
  const issued = assertion.getAttribute('IssueInstant') ?? '';
  const t = Date.parse(issued);
  if (!issued || Number.isNaN(t)) invalid(`Assertion/@IssueInstant "${issued}" is missing or not a date-time`);
  if (Math.abs(t - now) > MAX_SKEW_MS)
    invalid(`Assertion/@IssueInstant ${issued} is more than 10 minutes away from the server time`);
  if (!text(child(assertion, NS.saml, 'Issuer'))) invalid('saml2:Issuer is missing or empty');
  const conditions = child(assertion, NS.saml, 'Conditions');
  if (conditions && child(conditions, NS.saml, 'AudienceRestriction'))
    invalid('saml2:Conditions/saml2:AudienceRestriction must be absent');
  return id;
}

const algorithm = (el: Element | undefined): string => el?.getAttribute('Algorithm') ?? '';

/** Shape of ds:Signature (before any cryptography), then the trusted certificate it names. */
function signatureShape(
  assertion: Element,
  id: string,
  seals: { der: Buffer; pem: string }[],
): { signature: Element; pem: string } {
  const kids = elements(assertion);
  const signature = kids.find((k) => is(k, NS.ds, 'Signature'));
  if (!signature) return invalid('no ds:Signature in the Assertion');
  if (!is(kids[0], NS.saml, 'Issuer') || kids[1] !== signature)
    invalid('ds:Signature must be the child of the Assertion right after saml2:Issuer');
  const signedInfo = child(signature, NS.ds, 'SignedInfo');
  if (!signedInfo) return invalid('ds:SignedInfo is missing');
  const c14n = algorithm(child(signedInfo, NS.ds, 'CanonicalizationMethod'));
  if (c14n !== ALG.excC14n) invalid(`CanonicalizationMethod must be exclusive c14n ${ALG.excC14n} (got "${c14n}")`);
  const sigAlg = algorithm(child(signedInfo, NS.ds, 'SignatureMethod'));
  if (sigAlg !== ALG.rsaSha256)
    invalid(
      `SignatureMethod must be rsa-sha256 ${ALG.rsaSha256} (got "${sigAlg}"${/sha1/.test(sigAlg) ? ': SHA-1 is refused' : ''})`,
    );
  const refs = children(signedInfo, NS.ds, 'Reference');
  if (refs.length !== 1) invalid(`exactly one ds:Reference expected in SignedInfo (found ${refs.length})`);
  const ref = refs[0]!;
  if (ref.getAttribute('URI') !== `#${id}`)
    invalid(`ds:Reference/@URI must be "#${id}" (the Assertion ID), got "${ref.getAttribute('URI') ?? ''}"`);
  const transformList = child(ref, NS.ds, 'Transforms');
  const transforms = transformList ? children(transformList, NS.ds, 'Transform').map(algorithm) : [];
  if (transforms.length !== 2 || transforms[0] !== ALG.enveloped || transforms[1] !== ALG.excC14n) {
    invalid(`ds:Transforms must be enveloped-signature then exclusive c14n (got ${transforms.join(', ') || 'none'})`);
  }
  const digest = algorithm(child(ref, NS.ds, 'DigestMethod'));
  if (digest !== ALG.sha256)
    invalid(
      `DigestMethod must be sha256 ${ALG.sha256} (got "${digest}"${/sha1/.test(digest) ? ': SHA-1 is refused' : ''})`,
    );
  const x509 = path(signature, NS.ds, 'KeyInfo', 'X509Data', 'X509Certificate');
  if (!text(x509)) return invalid('ds:KeyInfo/ds:X509Data/ds:X509Certificate is missing');
  const der = Buffer.from(text(x509).replace(/\s+/g, ''), 'base64');
  const trusted = seals.find((s) => s.der.equals(der));
  if (!trusted) return failedAuth('the certificate in ds:KeyInfo is not a trusted seal certificate');
  return { signature, pem: trusted.pem };
}

/**
 * Verifies the signature over the whole envelope text (so inherited namespaces count as the signer saw
 * them) and returns the signed Assertion, re-parsed from what xml-crypto actually digested.
 */
function verifySignature(envelopeXml: string, signature: Element, pem: string, id: string): Element {
  const sig = new SignedXml({ publicCert: pem, getCertFromKeyInfo: () => null });
  // SAML's ID only. (The idAttribute option would add 'ID' a second time to xml-crypto's default list
  // ['Id', 'ID', 'id'], so the Assertion counts twice and the wrapping guard refuses every message.)
  sig.idAttributes = ['ID'];
  sig.loadSignature(signature);
  let ok: boolean;
  try {
    ok = sig.checkSignature(envelopeXml);
  } catch (e) {
    const msg = (e as Error).message;
    return failedAuth(
      /signature value/.test(msg)
        ? 'the VIHF SignatureValue does not verify with the seal certificate'
        : `VIHF signature check failed: ${msg.slice(0, 200)}`,
    );
  }
  if (!ok) failedAuth('the VIHF digest does not match the Assertion (content changed after signing)');
  const signed = sig.getSignedReferences();
  if (signed.length !== 1) failedAuth(`exactly one signed reference expected (got ${signed.length})`);
  const el = parseXml(signed[0]!).documentElement;
  if (!is(el, NS.saml, 'Assertion') || el.getAttribute('ID') !== id)
    failedAuth('the signed element is not the Assertion');
  return el;
}

function attributeChecks(assertion: Element): { patient: Vihf['patient']; attributes: Map<string, Element[]> } {
  const problems: string[] = [];
  const attributes = new Map<string, Element[]>();
  for (const st of children(assertion, NS.saml, 'AttributeStatement')) {
    for (const a of children(st, NS.saml, 'Attribute')) {
      attributes.set(a.getAttribute('Name') ?? '', children(a, NS.saml, 'AttributeValue'));
    }
  }
  const value = (name: string): string => text(attributes.get(name)?.[0]);
  const expect = (name: string, ok: (v: string) => boolean, what: string): void => {
    if (!attributes.has(name)) problems.push(`attribute ${name} is missing`);
    else if (!ok(value(name))) problems.push(`attribute ${name} ${what} (got "${value(name)}")`);
  };
  const nonEmpty = (v: string) => v !== '';
  expect('VIHF_Version', (v) => v === '3.0' || v === '4.0', 'must be 3.0 or 4.0');
  expect('Authentification_Mode', (v) => v === 'INDIRECTE', 'must be INDIRECTE');
  expect('Ressource_URN', (v) => v === 'urn:dmp', 'must be urn:dmp');
  expect('Identifiant_Structure', nonEmpty, 'must not be empty');
  expect('Secteur_Activite', (v) => /^[^^]+\^1\.2\.250\.1\.71\.4\.2\.4$/.test(v), 'must be code^1.2.250.1.71.4.2.4');
  expect('urn:oasis:names:tc:xspa:1.0:subject:subject-id', nonEmpty, 'must not be empty');
  for (const name of ['LPS_Nom', 'LPS_Version', 'LPS_ID_HOMOLOGATION_DMP']) expect(name, nonEmpty, 'must not be empty');

  const roles = attributes.get(ROLE_ATTR);
  if (!roles?.length) problems.push(`attribute ${ROLE_ATTR} is missing`);
  for (const v of roles ?? []) {
    const role = child(v, NS.hl7, 'Role');
    if (!role?.getAttribute('code') || !role.getAttribute('codeSystem'))
      problems.push(`attribute ${ROLE_ATTR}: each value needs a Role (urn:hl7-org:v3) with code and codeSystem`);
  }
  const purposeValue = attributes.get(PURPOSE_ATTR)?.[0];
  const purpose = purposeValue && child(purposeValue, NS.hl7, 'PurposeOfUse');
  if (!purposeValue) problems.push(`attribute ${PURPOSE_ATTR} is missing`);
  else if (
    purpose?.getAttribute('code') !== 'normal' ||
    purpose.getAttribute('codeSystem') !== '1.2.250.1.213.1.1.4.248'
  ) {
    problems.push(
      `attribute ${PURPOSE_ATTR} needs PurposeOfUse (urn:hl7-org:v3) ` +
        'code="normal" codeSystem="1.2.250.1.213.1.1.4.248"',
    );
  }

  let patient = { matricule: '', oid: '' };
  if (!attributes.has(RESOURCE_ATTR)) problems.push(`attribute ${RESOURCE_ATTR} is missing`);
  else {
    const ins = parseInsCx(value(RESOURCE_ATTR));
    if (ins.ok) patient = { matricule: ins.matricule, oid: ins.oid };
    else problems.push(`attribute ${RESOURCE_ATTR} is not an INS: ${ins.reason}`); // no "got": it is a patient id
  }
  if (problems.length) invalid(problems.join('; '));
  return { patient, attributes };
}

/**
 * All the VIHF checks on the wsse:Security header of `doc` (parsed from `envelopeXml`). Throws
 * SecurityFault; returns what the business checks need.
 */
export function checkVihf(
  doc: Document,
  envelopeXml: string,
  security: Element,
  seals: { der: Buffer; pem: string }[],
  now = Date.now(),
): Vihf {
  // Signature wrapping guard: the one Assertion of the whole message is the one in wsse:Security.
  const all = doc.getElementsByTagNameNS(NS.saml, 'Assertion');
  if (all.length !== 1)
    invalid(
      all.length === 0
        ? 'no saml2:Assertion (VIHF) in wsse:Security'
        : `exactly one saml2:Assertion expected in the message (found ${all.length})`,
    );
  const assertion = all.item(0)!;
  if (assertion.parentNode !== security) invalid('the saml2:Assertion must be a child of wsse:Security');

  const id = assertionFrame(assertion, now);
  const { signature, pem } = signatureShape(assertion, id, seals);
  const signed = verifySignature(envelopeXml, signature, pem, id);

  // From here on, read only the signed copy.
  const nameId = text(path(signed, NS.saml, 'Subject', 'NameID'));
  if (!nameId) invalid('saml2:Subject/saml2:NameID is missing or empty');
  const authn = child(signed, NS.saml, 'AuthnStatement');
  if (!authn?.getAttribute('AuthnInstant')) invalid('saml2:AuthnStatement/@AuthnInstant is missing');
  if (!text(path(authn, NS.saml, 'AuthnContext', 'AuthnContextClassRef'))) {
    invalid('saml2:AuthnStatement/saml2:AuthnContext/saml2:AuthnContextClassRef is missing or empty');
  }
  return { ...attributeChecks(signed), nameId };
}

// ---------------------------------------------------------------- transport and envelope

export const ACTION = {
  pnr: 'urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b',
  update: 'urn:ihe:iti:2010:UpdateDocumentSet',
  query: 'urn:ihe:iti:2007:RegistryStoredQuery',
};
export type Endpoint = 'repository' | 'registry';
const ENDPOINT_ACTIONS: Record<Endpoint, string[]> = {
  repository: [ACTION.pnr],
  registry: [ACTION.update, ACTION.query],
};
const BODY_ELEMENT: Record<string, [string, string]> = {
  [ACTION.pnr]: [NS.xds, 'ProvideAndRegisterDocumentSetRequest'],
  [ACTION.update]: [NS.lcm, 'SubmitObjectsRequest'],
  [ACTION.query]: [NS.query, 'AdhocQueryRequest'],
};

/** A SOAP 1.2 Fault to answer (HTTP 500). */
export class Fault extends Error {
  constructor(
    readonly code: string,
    readonly subcode: string | undefined,
    reason: string,
  ) {
    super(reason);
  }
}
export const sender = (reason: string, subcode?: string) => new Fault('soap:Sender', subcode, reason);

export interface Unpacked {
  envelope: string;
  parts: Map<string, MimePart>;
  root?: MimePart;
  ctAction?: string;
}

/** HTTP body → envelope text (+ MTOM parts), checking the SOAP 1.2 / XOP content types. */
export function unpack(endpoint: Endpoint, contentType: string, body: Buffer): Unpacked {
  const { type, params } = parseContentType(contentType);
  if (type === 'multipart/related') {
    if (params.type?.toLowerCase() !== 'application/xop+xml') {
      throw sender(`multipart/related type parameter must be "application/xop+xml" (got "${params.type ?? ''}")`);
    }
    if (params['start-info'] && !params['start-info'].toLowerCase().startsWith('application/soap+xml')) {
      throw sender(`start-info must be application/soap+xml (SOAP 1.2), got "${params['start-info']}"`);
    }
    let mp: ReturnType<typeof parseMultipart>;
    try {
      mp = parseMultipart(contentType, body);
    } catch (e) {
      if (e instanceof MimeError) throw sender(`malformed MTOM: ${e.message}`);
      throw e;
    }
    const root = parseContentType(mp.root.contentType);
    if (root.type !== 'application/xop+xml' || root.params.type?.toLowerCase() !== 'application/soap+xml') {
      throw sender(
        `the root MIME part must be application/xop+xml; type="application/soap+xml" (got "${mp.root.contentType}")`,
      );
    }
    const attachments = [...mp.parts.values()].filter((p) => p !== mp.root).length;
    if (endpoint === 'registry' && attachments > 0)
      throw sender(`ITI-57 / ITI-18 carry no attachment (found ${attachments})`);
    const ctAction = params.action ?? root.params.action;
    return {
      envelope: mp.root.body.toString('utf8'),
      parts: mp.parts,
      root: mp.root,
      ...(ctAction ? { ctAction } : {}),
    };
  }
  if (type === 'application/soap+xml') {
    if (endpoint === 'repository')
      throw sender('ITI-41 must be sent as MTOM: multipart/related; type="application/xop+xml"');
    return { envelope: body.toString('utf8'), parts: new Map(), ...(params.action ? { ctAction: params.action } : {}) };
  }
  throw sender(
    `Content-Type "${type || '(none)'}" is neither SOAP 1.2 (application/soap+xml) nor MTOM (multipart/related)`,
  );
}

export interface Envelope {
  action: string;
  messageId: string;
  security: Element;
  body: Element;
}

const UNDERSTOOD = new Set([`${NS.wsa} Action`, `${NS.wsa} To`, `${NS.wsa} MessageID`, `${NS.wsse} Security`]);

/** SOAP 1.2 + WS-Addressing checks. `ids` receives the MessageID as soon as it is known (for RelatesTo). */
export function checkEnvelope(
  doc: Document,
  endpoint: Endpoint,
  basePath: string,
  ids: { messageId: string; action: string },
): Envelope {
  const env = doc.documentElement;
  if (is(env, NS.soap11, 'Envelope'))
    throw new Fault('soap:VersionMismatch', undefined, `SOAP 1.1 envelope: SOAP 1.2 (${NS.soap}) is required`);
  if (!is(env, NS.soap, 'Envelope')) throw sender('the root element is not a SOAP 1.2 soap:Envelope');
  const header = child(env, NS.soap, 'Header');
  const body = child(env, NS.soap, 'Body');
  if (!header) throw sender('soap:Header is missing', 'wsa:MessageAddressingHeaderRequired');
  if (!body) throw sender('soap:Body is missing');
  for (const name of ['MessageID', 'To', 'Action']) {
    const n = children(header, NS.wsa, name).length;
    if (n === 0) throw sender(`wsa:${name} header is missing`, 'wsa:MessageAddressingHeaderRequired');
    if (n > 1) throw sender(`wsa:${name} header appears ${n} times`, 'wsa:InvalidAddressingHeader');
  }
  ids.messageId = text(child(header, NS.wsa, 'MessageID'));
  if (!ids.messageId) throw sender('wsa:MessageID is empty', 'wsa:InvalidAddressingHeader');
  for (const h of elements(header)) {
    const mu = h.getAttributeNS(NS.soap, 'mustUnderstand');
    if ((mu === 'true' || mu === '1') && !UNDERSTOOD.has(`${h.namespaceURI} ${h.localName}`)) {
      throw new Fault(
        'soap:MustUnderstand',
        undefined,
        `header block {${h.namespaceURI}}${h.localName} is not understood`,
      );
    }
  }
  const actionEl = child(header, NS.wsa, 'Action')!;
  const action = text(actionEl);
  const mu = actionEl.getAttributeNS(NS.soap, 'mustUnderstand');
  if (mu !== 'true' && mu !== '1')
    throw sender('wsa:Action must carry soap:mustUnderstand="true"', 'wsa:InvalidAddressingHeader');
  if (!ENDPOINT_ACTIONS[endpoint].includes(action)) {
    throw sender(
      `action "${action}" is not served by the ${endpoint} endpoint ` +
        `(expected ${ENDPOINT_ACTIONS[endpoint].join(' or ')})`,
      'wsa:ActionNotSupported',
    );
  }
  ids.action = action;
  const to = text(child(header, NS.wsa, 'To'));
  let toPath: string;
  try {
    toPath = new URL(to).pathname;
  } catch {
    throw sender(`wsa:To "${to}" is not a URL`, 'wsa:InvalidAddressingHeader');
  }
  // Path only: a proxy or a host alias changes host and port, not the service path.
  if (toPath !== `${basePath}/${endpoint}`)
    throw sender(
      `wsa:To "${to}" is not the ${endpoint} endpoint (${basePath}/${endpoint})`,
      'wsa:InvalidAddressingHeader',
    );
  const security = child(header, NS.wsse, 'Security');
  if (!security) throw new SecurityFault('wsse:InvalidSecurity', 'wsse:Security header is missing');
  const content = elements(body);
  const [ns, local] = BODY_ELEMENT[action]!;
  if (content.length !== 1 || !is(content[0], ns, local))
    throw sender(`soap:Body must hold exactly one {${ns}}${local} for ${action}`);
  return { action, messageId: ids.messageId, security, body: content[0]! };
}
