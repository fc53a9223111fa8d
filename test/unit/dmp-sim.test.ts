/**
 * The strict DMP simulator over real HTTPS (mutual TLS), driven by hand-built requests: the VIHF is
 * signed here with xml-crypto, the ebRIM bodies come from src/xds/ebrim.ts, MTOM from src/dmp/mtom.ts.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildMtom } from '../../src/dmp/mtom.js';
import { simCommand } from '../../src/sim/cli.js';
import { DmpSimulator, type DmpSimulatorOptions } from '../../src/sim/dmp.js';
import {
  XDS_UUID,
  getDocumentsQuery,
  provideAndRegisterRequest,
  updateDocumentSetRequest,
  type EbrimOptions,
} from '../../src/xds/ebrim.js';
import type { DocumentEntry, SubmissionSet } from '../../src/xds/model.js';
import { makeTestPki } from '../helpers/tls.js';

// ---------------------------------------------------------------- fixtures

const pki = makeTestPki();
/** A second key pair whose self-signed certificate the simulator does not trust. */
const untrusted = (() => {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'rogue.key',
      '-out',
      'rogue.crt',
      '-days',
      '1',
      '-subj',
      '/CN=rogue',
    ],
    { cwd: pki.dir, stdio: 'pipe' },
  );
  return { cert: readFileSync(join(pki.dir, 'rogue.crt')), key: readFileSync(join(pki.dir, 'rogue.key')) };
})();

const INS_OID = '1.2.250.1.213.1.4.10';
const insOf = (body13: string) => body13 + String(97 - Number(BigInt(body13) % 97n)).padStart(2, '0');
const INS1 = insOf('2790351215189');
const INS2 = insOf('1840575123456');
const INS3 = insOf('2010199000123');
const cxOf = (ins: string, oid = INS_OID, type = 'NH') => `${ins}^^^&${oid}&ISO^${type}`;
const patient = (ins: string) => ({ id: ins, authority: INS_OID, type: 'NH' });

const ACT = {
  pnr: 'urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b',
  update: 'urn:ihe:iti:2010:UpdateDocumentSet',
  query: 'urn:ihe:iti:2007:RegistryStoredQuery',
};
const ST = {
  approved: 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved',
  deprecated: 'urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated',
  deleted: 'urn:asip:ci-sis:2010:StatusType:Deleted',
  archived: 'urn:asip:ci-sis:2010:StatusType:Archived',
};
const TYPE_OK = { code: '11490-0', scheme: '2.16.840.1.113883.6.1', display: 'Lettre de liaison à la sortie' };
const DE = XDS_UUID.documentEntry;
const SS = XDS_UUID.submissionSet;

let seq = 0;
const author = {
  person: { id: '810002909371', idAuthority: '1.2.250.1.71.4.2.1', family: 'MEDECIN', given: 'JEAN' },
  institutions: [{ name: 'CH Test', id: '1999999999', idAuthority: '1.2.250.1.71.4.2.2' }],
  roles: [],
  specialties: [],
};
function newSet(ins = INS1): SubmissionSet {
  seq++;
  return {
    entryUUID: `urn:uuid:${randomUUID()}`,
    uniqueId: `1.2.250.1.999.1.1.8.${seq}`,
    sourceId: '1.2.250.1.999.1.1',
    submissionTime: '20240315101600',
    contentTypeCode: { code: '04', scheme: '1.2.250.1.213.2.2', display: 'Hospitalisation de jour' },
    patientId: patient(ins),
    author,
  };
}
function newEntry(content: Buffer, over: Partial<DocumentEntry> = {}): DocumentEntry {
  seq++;
  return {
    entryUUID: `urn:uuid:${randomUUID()}`,
    uniqueId: `1.2.250.1.999.1.1.7.${seq}`,
    mimeType: 'text/xml',
    title: 'CR hospitalisation',
    typeCode: TYPE_OK,
    classCode: { code: '10', scheme: '1.2.250.1.213.1.1.4.1', display: 'Compte rendu' },
    formatCode: { code: 'urn:ihe:pcc:xds-ms:2007', scheme: '1.3.6.1.4.1.19376.1.2.3', display: 'XDS-MS' },
    confidentialityCodes: [{ code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' }],
    healthcareFacilityTypeCode: {
      code: 'SA01',
      scheme: '1.2.250.1.71.4.2.4',
      display: 'Etablissement Public de santé',
    },
    practiceSettingCode: { code: 'ETABLISSEMENT', scheme: '1.2.250.1.213.1.1.4.9', display: 'Etablissement de santé' },
    languageCode: 'fr-FR',
    creationTime: '20240315101500',
    patientId: patient(INS1),
    sourcePatientId: { id: 'IPP-42', authority: '1.2.250.1.999.1.2.3', type: 'PI' },
    sourcePatientInfo: [],
    authors: [author],
    eventCodes: [],
    referenceIds: [],
    hash: createHash('sha1').update(content).digest('hex'),
    size: content.length,
    ...over,
  };
}
const cda = (n = 1) => Buffer.from(`<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="${n}"/></ClinicalDocument>`);

// ---------------------------------------------------------------- VIHF and envelope

const ALG = {
  exc: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  env: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  rsa256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  rsa1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
};
const ROLE = 'urn:oasis:names:tc:xacml:2.0:subject:role';
const PURPOSE = 'urn:oasis:names:tc:xspa:1.0:subject:purposeofuse';
const RESOURCE = 'urn:oasis:names:tc:xacml:2.0:resource:resource-id';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

interface VihfOpts {
  patient?: string;
  /** Attribute value XML by name; null removes the attribute. */
  attrs?: Record<string, string | null>;
  issueInstant?: string;
  version?: string;
  audience?: boolean;
  nameId?: string;
  authn?: boolean;
  classRef?: string;
  sha1?: boolean;
  signer?: { cert: Buffer; key: Buffer };
  keyInfoCert?: Buffer;
  unsigned?: boolean;
  signatureLast?: boolean;
  /** InclusiveNamespaces PrefixList of the Reference (the IG example uses "ds saml #default xsi"). */
  prefixList?: string[];
  /** Edits the signed assertion text (tampering, structural changes). */
  after?: (xml: string) => string;
}

function vihf(o: VihfOpts = {}): string {
  const now = new Date().toISOString();
  const attrs: Record<string, string | null> = {
    VIHF_Version: '3.0',
    Authentification_Mode: 'INDIRECTE',
    Ressource_URN: 'urn:dmp',
    [RESOURCE]: esc(o.patient ?? cxOf(INS1)),
    Identifiant_Structure: '1999999999',
    Secteur_Activite: 'SA01^1.2.250.1.71.4.2.4',
    'urn:oasis:names:tc:xspa:1.0:subject:subject-id': 'PFI, automate',
    [ROLE]:
      '<Role xmlns="urn:hl7-org:v3" xsi:type="CE" code="AUTOMATE" codeSystem="1.2.250.1.213.1.1.4.6" ' +
      'displayName="AUTOMATE"/>',
    [PURPOSE]:
      '<PurposeOfUse xmlns="urn:hl7-org:v3" xsi:type="CE" code="normal" codeSystem="1.2.250.1.213.1.1.4.248" ' +
      'displayName="Accès normal"/>',
    LPS_Nom: 'PFI',
    LPS_Version: '0.1.0',
    LPS_ID_HOMOLOGATION_DMP: 'TEST-0001',
    ...o.attrs,
  };
  const attributes = Object.entries(attrs)
    .filter(([, v]) => v !== null)
    .map(
      ([name, v]) =>
        `<saml2:Attribute Name="${name}"><saml2:AttributeValue>${v}</saml2:AttributeValue></saml2:Attribute>`,
    )
    .join('');
  const xml =
    `<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ` +
    `ID="_${randomUUID()}" IssueInstant="${o.issueInstant ?? now}" Version="${o.version ?? '2.0'}">` +
    `<saml2:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName">` +
    `CN=emetteur-test,O=PFI Test</saml2:Issuer>` +
    `<saml2:Subject><saml2:NameID>${o.nameId ?? 'PFI/automate'}</saml2:NameID></saml2:Subject>` +
    (o.audience
      ? '<saml2:Conditions><saml2:AudienceRestriction><saml2:Audience>urn:x</saml2:Audience>' +
        '</saml2:AudienceRestriction></saml2:Conditions>'
      : '') +
    (o.authn === false
      ? ''
      : `<saml2:AuthnStatement AuthnInstant="${now}"><saml2:AuthnContext>` +
        `<saml2:AuthnContextClassRef>${o.classRef ?? 'urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified'}` +
        '</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>') +
    `<saml2:AttributeStatement>${attributes}</saml2:AttributeStatement></saml2:Assertion>`;
  let out = xml;
  if (!o.unsigned) {
    const signer = o.signer ?? { cert: pki.pem['client.crt'], key: pki.pem['client.key'] };
    const sig = new SignedXml({
      privateKey: signer.key,
      publicCert: o.keyInfoCert ?? signer.cert,
      signatureAlgorithm: o.sha1 ? ALG.rsa1 : ALG.rsa256,
      canonicalizationAlgorithm: ALG.exc,
      idAttribute: 'ID',
    });
    sig.addReference({
      xpath: "/*[local-name(.)='Assertion']",
      transforms: [ALG.env, ALG.exc],
      digestAlgorithm: o.sha1 ? ALG.sha1 : ALG.sha256,
      ...(o.prefixList ? { inclusiveNamespacesPrefixList: o.prefixList } : {}),
    });
    sig.computeSignature(xml, {
      prefix: 'ds',
      location: o.signatureLast
        ? { reference: "/*/*[local-name(.)='AttributeStatement']", action: 'after' }
        : { reference: "/*/*[local-name(.)='Issuer']", action: 'after' },
    });
    out = sig.getSignedXml();
  }
  return o.after ? o.after(out) : out;
}

interface EnvOpts {
  action: string;
  endpoint: 'repository' | 'registry';
  to?: string;
  messageId?: string | null;
  mustUnderstand?: string | null;
  security?: string | null;
  soapNs?: string;
  extraHeader?: string;
}
const SOAP12 = 'http://www.w3.org/2003/05/soap-envelope';
function soapEnvelope(body: string, e: EnvOpts): string {
  const to = e.to ?? `${sim.url}/${e.endpoint}`;
  const mu = e.mustUnderstand === null ? '' : ` soap:mustUnderstand="${e.mustUnderstand ?? 'true'}"`;
  return (
    `<soap:Envelope xmlns:soap="${e.soapNs ?? SOAP12}" xmlns:wsa="http://www.w3.org/2005/08/addressing">` +
    '<soap:Header>' +
    (e.messageId === null ? '' : `<wsa:MessageID>${e.messageId ?? 'urn:uuid:' + randomUUID()}</wsa:MessageID>`) +
    (to ? `<wsa:To>${to}</wsa:To>` : '') +
    (e.action ? `<wsa:Action${mu}>${e.action}</wsa:Action>` : '') +
    (e.extraHeader ?? '') +
    (e.security === null
      ? ''
      : `<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">${e.security ?? vihf()}</wsse:Security>`) +
    `</soap:Header><soap:Body>${body.replace(/^<\?xml[^>]*>/, '')}</soap:Body></soap:Envelope>`
  );
}

// ---------------------------------------------------------------- HTTP

let sim: DmpSimulator;
let port: number;

interface Raw {
  status: number;
  contentType: string;
  text: string;
}
function post(
  path: string,
  contentType: string,
  body: Buffer | Buffer[],
  tls: { cert?: Buffer; key?: Buffer } = { cert: pki.pem['client.crt'], key: pki.pem['client.key'] },
  method = 'POST',
): Promise<Raw> {
  const payload = Buffer.isBuffer(body) ? body : Buffer.concat(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        ca: pki.pem['ca.crt'],
        ...tls,
        agent: false,
        headers: { 'content-type': contentType, 'content-length': payload.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            contentType: String(res.headers['content-type']),
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
const pathOf = (endpoint: string) => new URL(`${sim.url}/${endpoint}`).pathname;

interface Answer extends Raw {
  responseStatus?: string;
  errors: { code: string; context: string; location: string }[];
  fault?: { code: string; subcode: string; reason: string };
  relatesTo?: string;
  action?: string;
  objects: { id: string; status: string; uniqueId: string }[];
}
const NS_ANY = (doc: Document, local: string) => Array.from(doc.getElementsByTagNameNS('*', local));
function parseAnswer(raw: Raw): Answer {
  const out: Answer = { ...raw, errors: [], objects: [] };
  if (!raw.contentType.startsWith('application/soap+xml')) return out;
  const doc = new DOMParser().parseFromString(raw.text, 'text/xml');
  const first = (local: string) => NS_ANY(doc, local)[0];
  out.relatesTo = first('RelatesTo')?.textContent ?? undefined;
  out.action = first('Action')?.textContent ?? undefined;
  const resp = first('RegistryResponse') ?? first('AdhocQueryResponse');
  if (resp) out.responseStatus = resp.getAttribute('status')!.replace(/^.*:/, '');
  out.errors = NS_ANY(doc, 'RegistryError').map((e) => ({
    code: e.getAttribute('errorCode')!,
    context: e.getAttribute('codeContext')!,
    location: e.getAttribute('location')!,
  }));
  const fault = first('Fault');
  if (fault) {
    const values = NS_ANY(doc, 'Value');
    out.fault = {
      code: values[0]?.textContent ?? '',
      subcode: values[1]?.textContent ?? '',
      reason: first('Text')?.textContent ?? '',
    };
  }
  out.objects = NS_ANY(doc, 'ExtrinsicObject').map((eo) => ({
    id: eo.getAttribute('id')!,
    status: eo.getAttribute('status')!,
    uniqueId: Array.from(eo.getElementsByTagNameNS('*', 'ExternalIdentifier'))
      .find((x) => x.getAttribute('identificationScheme') === DE.uniqueId)!
      .getAttribute('value')!,
  }));
  return out;
}

/** Edits a request body through the DOM. */
function mutate(xml: string, fn: (doc: Document) => void): string {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  fn(doc);
  return new XMLSerializer().serializeToString(doc);
}
const all = (doc: Document, local: string) => Array.from(doc.getElementsByTagNameNS('*', local));
const remove = (n: Node | undefined) => n?.parentNode?.removeChild(n);
const childrenOf = (el: Element, local: string) =>
  Array.from(el.childNodes).filter((n): n is Element => n.nodeType === 1 && (n as Element).localName === local);
const bySlot = (el: Element, name: string) => childrenOf(el, 'Slot').find((s) => s.getAttribute('name') === name);
const byScheme = (el: Element, scheme: string) =>
  [...childrenOf(el, 'Classification'), ...childrenOf(el, 'ExternalIdentifier')].find(
    (c) => (c.getAttribute('classificationScheme') || c.getAttribute('identificationScheme')) === scheme,
  );

interface PnrOpts {
  set?: SubmissionSet;
  docs?: { entry: DocumentEntry; content: Buffer }[];
  ebrim?: EbrimOptions;
  vihf?: VihfOpts;
  env?: Partial<EnvOpts>;
  mutate?: (doc: Document) => void;
  /** Parts sent (default: one per document); base64: send them base64-encoded. */
  parts?: { contentId: string; contentType: string; body: Buffer }[];
  base64?: boolean;
  plain?: boolean;
}
async function pnr(o: PnrOpts = {}): Promise<Answer & { docs: { entry: DocumentEntry; content: Buffer }[] }> {
  const docs = o.docs ?? [{ entry: newEntry(cda()), content: cda() }];
  let body = provideAndRegisterRequest(
    o.set ?? newSet(),
    docs.map((d, i) => ({ entry: d.entry, contentId: `doc${i}@test` })),
    o.ebrim,
  );
  if (o.mutate) body = mutate(body, o.mutate);
  const env = soapEnvelope(body, { action: ACT.pnr, endpoint: 'repository', security: vihf(o.vihf), ...o.env });
  const parts =
    o.parts ?? docs.map((d, i) => ({ contentId: `doc${i}@test`, contentType: 'text/xml', body: d.content }));
  let raw: Raw;
  if (o.plain)
    raw = await post(
      pathOf('repository'),
      `application/soap+xml; charset=UTF-8; action="${ACT.pnr}"`,
      Buffer.from(env),
    );
  else if (o.base64) {
    const b = 'b64boundary';
    const lines = [
      `--${b}`,
      'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"',
      'Content-ID: <root@test>',
      '',
      env,
    ];
    for (const p of parts)
      lines.push(
        `--${b}`,
        `Content-Type: ${p.contentType}`,
        'Content-Transfer-Encoding: BASE64',
        `Content-ID: <${p.contentId}>`,
        '',
        p.body.toString('base64'),
      );
    lines.push(`--${b}--`, '');
    raw = await post(
      pathOf('repository'),
      `multipart/related; boundary=${b}; type="application/xop+xml"; start="<root@test>"; ` +
        'start-info="application/soap+xml"',
      Buffer.from(lines.join('\r\n')),
    );
  } else {
    const m = buildMtom(env, parts, ACT.pnr);
    raw = await post(pathOf('repository'), m.contentType, m.chunks);
  }
  return { ...parseAnswer(raw), docs };
}
async function registry(
  action: string,
  body: string,
  o: { vihf?: VihfOpts; env?: Partial<EnvOpts> } = {},
): Promise<Answer> {
  const env = soapEnvelope(body, { action, endpoint: 'registry', security: vihf(o.vihf), ...o.env });
  return parseAnswer(
    await post(pathOf('registry'), `application/soap+xml; charset=UTF-8; action="${action}"`, Buffer.from(env)),
  );
}
const deleteDoc = (entryUUID: string, o: { from?: string; to?: string; set?: SubmissionSet; vihf?: VihfOpts } = {}) =>
  registry(
    ACT.update,
    updateDocumentSetRequest(o.set ?? newSet(), [{ entryUUID, from: o.from ?? ST.approved }], o.to ?? ST.deleted),
    o,
  );
const query = (uniqueIds: string[], o: { vihf?: VihfOpts } = {}) =>
  registry(ACT.query, getDocumentsQuery(uniqueIds), o);

const codes = (a: Answer) => a.errors.map((e) => e.code);
function expectFailure(a: Answer, code: string, context?: RegExp): void {
  expect(a.status, a.text).toBe(200);
  expect(a.responseStatus, a.text).toBe('Failure');
  expect(codes(a)).toContain(code);
  if (context)
    expect(
      a.errors
        .filter((e) => e.code === code)
        .map((e) => e.context)
        .join(' | '),
    ).toMatch(context);
}
function expectFault(a: Answer, subcode: string, reason: RegExp): void {
  expect(a.status, a.text).toBe(500);
  expect(a.fault?.code, a.text).toBe('soap:Sender');
  expect(a.fault?.subcode).toBe(subcode);
  expect(a.fault?.reason).toMatch(reason);
}
async function stored(): Promise<{ entryUUID: string; uniqueId: string }> {
  const r = await pnr();
  expect(r.responseStatus, r.text).toBe('Success');
  return { entryUUID: r.docs[0]!.entry.entryUUID, uniqueId: r.docs[0]!.entry.uniqueId };
}

beforeAll(async () => {
  sim = await DmpSimulator.start({
    tls: { cert: pki.pem['server.crt'], key: pki.pem['server.key'], ca: pki.pem['ca.crt'] },
    sealCertificates: [pki.pem['client.crt']],
    valueSets: { typeCodes: new Set(['11490-0|2.16.840.1.113883.6.1', '60591-5|2.16.840.1.113883.6.1']) },
    timeoutMs: 400,
  });
  port = Number(new URL(sim.url).port);
});
afterAll(() => sim.stop());
beforeEach(() => sim.reset());

// ---------------------------------------------------------------- tests

describe('transport', () => {
  it('url and mutual TLS: no client certificate, no answer', async () => {
    expect(sim.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/si-dmp-server\/v2\/services$/);
    await expect(post(pathOf('repository'), 'text/plain', Buffer.from('x'), {})).rejects.toThrow();
    await expect(
      post(pathOf('repository'), 'text/plain', Buffer.from('x'), { cert: untrusted.cert, key: untrusted.key }),
    ).rejects.toThrow();
  });

  it('404 elsewhere, 405 for GET, recorded', async () => {
    expect((await post('/si-dmp-server/v2/services/other', 'text/plain', Buffer.from('x'))).status).toBe(404);
    expect((await post(pathOf('registry'), 'text/plain', Buffer.alloc(0), undefined, 'GET')).status).toBe(405);
    expect(sim.requests().map((r) => [r.status, r.errors[0]!.code])).toEqual([
      ['HTTP', '404'],
      ['HTTP', '405'],
    ]);
  });

  /** Runs `fn` against another simulator instance. */
  async function withSim(opts: Partial<DmpSimulatorOptions>, fn: () => Promise<void>): Promise<void> {
    const other = await DmpSimulator.start({
      tls: { cert: pki.pem['server.crt'], key: pki.pem['server.key'], ca: pki.pem['ca.crt'] },
      sealCertificates: [pki.pem['client.crt']],
      ...opts,
    });
    const [savedSim, savedPort] = [sim, port];
    [sim, port] = [other, Number(new URL(other.url).port)];
    try {
      await fn();
    } finally {
      [sim, port] = [savedSim, savedPort];
      await other.stop();
    }
  }

  it('413 above the body limit', async () => {
    await withSim({ maxBodyBytes: 1000 }, async () => {
      expect((await post(pathOf('repository'), 'application/soap+xml', Buffer.alloc(5000, 0x20))).status).toBe(413);
    });
  });

  it('unknownPatients and basePath options', async () => {
    await withSim({ unknownPatients: 'none', basePath: '/dmp' }, async () => {
      expect(sim.url).toMatch(/\/dmp$/);
      expectFailure(await pnr(), 'DMPNotFound', /no DMP for this patient/);
      sim.setPatient(INS1, 'open');
      expect((await pnr()).responseStatus).toBe('Success');
    });
  });

  it('refuses to start without a seal certificate', async () => {
    await expect(
      DmpSimulator.start({
        tls: { cert: pki.pem['server.crt'], key: pki.pem['server.key'], ca: pki.pem['ca.crt'] },
        sealCertificates: [Buffer.from('nope')],
      }),
    ).rejects.toThrow(/no PEM certificate/);
  });

  it('answers plain SOAP 1.2, Action + Response, RelatesTo = MessageID', async () => {
    const r = await pnr({ env: { messageId: 'urn:uuid:11111111-2222-3333-4444-555555555555' } });
    expect(r.contentType).toBe('application/soap+xml; charset=UTF-8');
    expect(r.action).toBe(`${ACT.pnr}Response`);
    expect(r.relatesTo).toBe('urn:uuid:11111111-2222-3333-4444-555555555555');
    expect(r.errors).toEqual([]);
  });
});

describe('ITI-41 happy paths', () => {
  it('stores a new document as Approved', async () => {
    const content = cda(7);
    const entry = newEntry(content);
    const set = newSet();
    const r = await pnr({ set, docs: [{ entry, content }] });
    expect(r.responseStatus, r.text).toBe('Success');
    const [doc, ...rest] = sim.documents();
    expect(rest).toEqual([]);
    expect(doc).toMatchObject({
      entryUUID: entry.entryUUID,
      uniqueId: entry.uniqueId,
      patientId: INS1,
      patientOid: INS_OID,
      status: 'Approved',
      typeCode: '11490-0',
      classCode: '10',
      formatCode: 'urn:ihe:pcc:xds-ms:2007',
      mimeType: 'text/xml',
      hash: entry.hash,
      size: content.length,
      confidentialityCodes: ['N'],
      title: 'CR hospitalisation',
      submissionSetUniqueId: set.uniqueId,
    });
    expect(doc!.content.equals(content)).toBe(true);
    expect(sim.requests()).toMatchObject([{ action: ACT.pnr, status: 'Success', errors: [] }]);
  });

  it('two documents, base64 parts; inline base64; Content-Type action; host alias in wsa:To', async () => {
    const docs = [1, 2].map((n) => ({ entry: newEntry(cda(n)), content: cda(n) }));
    expect((await pnr({ docs, base64: true })).responseStatus).toBe('Success');
    const inline = { entry: newEntry(cda(3)), content: cda(3) };
    const r = await pnr({
      docs: [inline],
      parts: [],
      mutate: (d) => {
        const doc = all(d, 'Document')[0]!;
        remove(all(d, 'Include')[0]);
        doc.appendChild(d.createTextNode(cda(3).toString('base64')));
      },
      env: { to: `https://dmp.example.org:443${pathOf('repository')}` },
    });
    expect(r.responseStatus, r.text).toBe('Success');
    expect(sim.documents().map((d) => d.uniqueId)).toEqual([...docs, inline].map((d) => d.entry.uniqueId));
  });

  it('a symbolic entry id gets a generated urn:uuid', async () => {
    const r = await pnr({ docs: [{ entry: newEntry(cda(), { entryUUID: 'Document01' }), content: cda() }] });
    expect(r.responseStatus, r.text).toBe('Success');
    expect(sim.documents()[0]!.entryUUID).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
  });

  it('replacement: RPLC deprecates the target', async () => {
    const old = await stored();
    const r = await pnr({ ebrim: { replaces: { entryUUID: old.entryUUID } } });
    expect(r.responseStatus, r.text).toBe('Success');
    const newId = r.docs[0]!.entry.entryUUID;
    const byId = new Map(sim.documents().map((d) => [d.entryUUID, d]));
    expect(byId.get(old.entryUUID)).toMatchObject({ status: 'Deprecated', replacedBy: newId });
    expect(byId.get(newId)).toMatchObject({ status: 'Approved', replaces: old.entryUUID });
  });

  it('several replacements in one submission (one RPLC per new entry)', async () => {
    const a = await stored();
    const b = await stored();
    const docs = [1, 2].map((n) => ({ entry: newEntry(cda(n)), content: cda(n) }));
    const r = await pnr({
      docs,
      ebrim: {
        replacements: [
          { source: docs[0]!.entry.entryUUID, target: a.entryUUID },
          { source: docs[1]!.entry.entryUUID, target: b.entryUUID },
        ],
      },
    });
    expect(r.responseStatus, r.text).toBe('Success');
    const byId = new Map(sim.documents().map((d) => [d.entryUUID, d]));
    expect(byId.get(a.entryUUID)!.replacedBy).toBe(docs[0]!.entry.entryUUID);
    expect(byId.get(b.entryUUID)!.replacedBy).toBe(docs[1]!.entry.entryUUID);
  });
});

describe('ITI-41 business refusals (RegistryResponse Failure)', () => {
  it('every missing SubmissionSet attribute is reported, with its location', async () => {
    const set = newSet();
    const r = await pnr({
      set,
      mutate: (d) => {
        const rp = all(d, 'RegistryPackage')[0]!;
        remove(bySlot(rp, 'submissionTime'));
        for (const s of [SS.author, SS.contentTypeCode, SS.uniqueId, SS.sourceId, SS.patientId])
          remove(byScheme(rp, s));
      },
    });
    expect(r.responseStatus).toBe('Failure');
    const missing = r.errors.filter((e) => e.code === 'XDSRegistryMetadataError').map((e) => e.location);
    expect(missing).toEqual(
      ['submissionTime', 'author', 'contentTypeCode', 'uniqueId', 'sourceId', 'patientId'].map(
        (a) => `${set.entryUUID}/${a}`,
      ),
    );
    expect(r.errors[0]!.context).toMatch(/SubmissionSet .*: required attribute submissionTime is missing/);
    expect(sim.documents()).toEqual([]);
  });

  it('every missing DocumentEntry attribute is reported', async () => {
    const entry = newEntry(cda());
    const r = await pnr({
      docs: [{ entry, content: cda() }],
      mutate: (d) => {
        const eo = all(d, 'ExtrinsicObject')[0]!;
        for (const s of [
          DE.classCode,
          DE.formatCode,
          DE.healthcareFacilityTypeCode,
          DE.practiceSettingCode,
          DE.typeCode,
          DE.patientId,
          DE.uniqueId,
        ])
          remove(byScheme(eo, s));
        remove(byScheme(eo, DE.confidentialityCode));
        for (const s of ['creationTime', 'languageCode', 'sourcePatientId']) remove(bySlot(eo, s));
        remove(childrenOf(eo, 'Name')[0]);
        eo.removeAttribute('mimeType');
      },
    });
    const locations = r.errors
      .filter((e) => e.code === 'XDSRegistryMetadataError')
      .map((e) => e.location.replace(`${entry.entryUUID}/`, ''));
    expect(locations.sort()).toEqual(
      [
        'classCode',
        'confidentialityCode',
        'formatCode',
        'healthcareFacilityTypeCode',
        'practiceSettingCode',
        'typeCode',
        'patientId',
        'uniqueId',
        'creationTime',
        'languageCode',
        'sourcePatientId',
        'mimeType',
        'Name (title)',
      ].sort(),
    );
  });

  it('a classification or identifier of an unknown scheme', async () => {
    const r = await pnr({
      mutate: (d) => {
        const eo = all(d, 'ExtrinsicObject')[0]!;
        byScheme(eo, DE.classCode)!.setAttribute(
          'classificationScheme',
          'urn:uuid:00000000-0000-0000-0000-000000000001',
        );
        byScheme(eo, DE.uniqueId)!.setAttribute(
          'identificationScheme',
          'urn:uuid:00000000-0000-0000-0000-000000000002',
        );
      },
    });
    expectFailure(
      r,
      'XDSRegistryMetadataError',
      /wrong classification scheme "urn:uuid:00000000-0000-0000-0000-000000000001"/,
    );
    expectFailure(
      r,
      'XDSRegistryMetadataError',
      /wrong identification scheme "urn:uuid:00000000-0000-0000-0000-000000000002"/,
    );
  });

  it('patientId not an INS: authority, type, key', async () => {
    const bad = [cxOf(INS1, '1.2.250.1.999'), cxOf(INS1, INS_OID, 'PI'), cxOf(INS1.slice(0, 13) + '00')];
    for (const value of bad) {
      const r = await pnr({
        mutate: (d) => byScheme(all(d, 'ExtrinsicObject')[0]!, DE.patientId)!.setAttribute('value', value),
      });
      expectFailure(r, 'XDSUnknownPatientId', /is not an INS/);
      expect(r.errors.find((e) => e.code === 'XDSUnknownPatientId')!.location).toMatch(/\/patientId$/);
    }
    const r = await pnr({
      mutate: (d) => byScheme(all(d, 'RegistryPackage')[0]!, SS.patientId)!.setAttribute('value', cxOf('123')),
    });
    expectFailure(r, 'XDSUnknownPatientId', /must be 15 characters/);
  });

  it('patientId mismatch: entry vs the VIHF resource-id, entry vs SubmissionSet, SubmissionSet vs VIHF', async () => {
    const e = newEntry(cda(), { patientId: patient(INS2) });
    const a = await pnr({ docs: [{ entry: e, content: cda() }], vihf: { patient: cxOf(INS1) } });
    expect(a.errors).toEqual([
      {
        code: 'XDSPatientIdDoesNotMatch',
        context: `patientId of ${e.entryUUID} differs from the VIHF resource-id`,
        location: `${e.entryUUID}/patientId`,
      },
    ]);
    const set = newSet(INS2);
    const entry = newEntry(cda());
    const b = await pnr({ set, docs: [{ entry, content: cda() }], vihf: { patient: cxOf(INS1) } });
    expect(b.errors.map((x) => [x.code, x.context])).toEqual([
      ['XDSPatientIdDoesNotMatch', `patientId of ${set.entryUUID} differs from the VIHF resource-id`],
      ['XDSPatientIdDoesNotMatch', `patientId of ${entry.entryUUID} differs from the SubmissionSet patientId`],
    ]);
  });

  it('xds:Document missing, or xop:Include naming no part; part referenced by nothing', async () => {
    expectFailure(
      await pnr({ mutate: (d) => remove(all(d, 'Document')[0]), parts: [] }),
      'XDSMissingDocument',
      /no xds:Document for DocumentEntry/,
    );
    expectFailure(
      await pnr({ parts: [{ contentId: 'other@test', contentType: 'text/xml', body: cda() }] }),
      'XDSMissingDocument',
      /xop:Include href "cid:doc0@test" .* names no MIME part/,
    );
    const docs = [{ entry: newEntry(cda()), content: cda() }];
    const extra = [
      { contentId: 'doc0@test', contentType: 'text/xml', body: cda() },
      { contentId: 'stray@test', contentType: 'text/xml', body: cda() },
    ];
    expectFailure(await pnr({ docs, parts: extra }), 'XDSRepositoryError', /MIME part <stray@test> is not referenced/);
  });

  it('hash and size that do not match the bytes', async () => {
    const e = newEntry(cda(), { hash: 'DA39A3EE5E6B4B0D3255BFEF95601890AFD80709', size: 3 });
    const r = await pnr({ docs: [{ entry: e, content: cda() }] });
    expectFailure(r, 'XDSNonIdenticalHash', /hash slot of .* does not match/);
    expectFailure(r, 'XDSNonIdenticalSize', new RegExp(`size slot of .* is 3, the document has ${cda().length} bytes`));
    // Upper-case hex of the right hash is fine.
    const ok = newEntry(cda(), { hash: createHash('sha1').update(cda()).digest('hex').toUpperCase() });
    expect((await pnr({ docs: [{ entry: ok, content: cda() }] })).responseStatus).toBe('Success');
  });

  it('uniqueId already in the registry', async () => {
    const first = await stored();
    const dup = newEntry(cda(), { uniqueId: first.uniqueId });
    expectFailure(
      await pnr({ docs: [{ entry: dup, content: cda() }] }),
      'XDSDuplicateUniqueIdInRegistry',
      new RegExp(`uniqueId ${first.uniqueId.replace(/\./g, '\\.')} is already registered`),
    );
  });

  it('typeCode outside JDV_J66', async () => {
    const e = newEntry(cda(), { typeCode: { code: '99999-9', scheme: '2.16.840.1.113883.6.1', display: 'Inconnu' } });
    expectFailure(
      await pnr({ docs: [{ entry: e, content: cda() }] }),
      'XDSRegistryMetadataError',
      /typeCode 99999-9\|2\.16\.840\.1\.113883\.6\.1 not allowed in the DMP \(JDV_J66\)/,
    );
  });

  it('patient without DMP, DMP closed (also via unknownPatients)', async () => {
    sim.setPatient(INS1, 'none');
    expectFailure(await pnr(), 'DMPNotFound', /no DMP for this patient/);
    sim.setPatient(INS1, 'closed');
    const r = await pnr();
    expectFailure(r, 'DMPClosed', /closed/);
    expect(codes(r)[0]).toBe('DMPClosed');
    sim.setPatient(INS1, 'open');
    expect((await pnr()).responseStatus).toBe('Success');
  });

  it('RPLC target unknown, not Approved, or of another patient', async () => {
    expectFailure(
      await pnr({ ebrim: { replaces: { entryUUID: `urn:uuid:${randomUUID()}` } } }),
      'XDSRegistryError',
      /replaced entry unknown/,
    );
    const old = await stored();
    expect((await pnr({ ebrim: { replaces: { entryUUID: old.entryUUID } } })).responseStatus).toBe('Success');
    expectFailure(
      await pnr({ ebrim: { replaces: { entryUUID: old.entryUUID } } }),
      'XDSRegistryError',
      /replaced entry is not Approved \(Deprecated\)/,
    );
    const other = newEntry(cda(), { patientId: patient(INS2) });
    expect(
      (await pnr({ set: newSet(INS2), docs: [{ entry: other, content: cda() }], vihf: { patient: cxOf(INS2) } }))
        .responseStatus,
    ).toBe('Success');
    expectFailure(
      await pnr({ ebrim: { replaces: { entryUUID: other.entryUUID } } }),
      'XDSPatientIdDoesNotMatch',
      /belongs to another patient/,
    );
  });

  it('all or nothing: one bad entry, nothing stored, the RPLC target untouched', async () => {
    const old = await stored();
    const before = sim.documents();
    const good = { entry: newEntry(cda(1)), content: cda(1) };
    const bad = { entry: newEntry(cda(2), { size: 1 }), content: cda(2) };
    const r = await pnr({
      docs: [good, bad],
      ebrim: { replacements: [{ source: good.entry.entryUUID, target: old.entryUUID }] },
    });
    expect(codes(r)).toEqual(['XDSNonIdenticalSize']);
    expect(sim.documents()).toEqual(before);
    expect(sim.requests().at(-1)).toMatchObject({
      action: ACT.pnr,
      status: 'Failure',
      errors: [{ code: 'XDSNonIdenticalSize' }],
    });
  });
});

describe('envelope refusals (SOAP Fault)', () => {
  it('ITI-41 not MTOM', async () => {
    expectFault(await pnr({ plain: true }), '', /ITI-41 must be sent as MTOM/);
  });

  it('not SOAP 1.2: content type, SOAP 1.1 envelope', async () => {
    const a = parseAnswer(await post(pathOf('registry'), 'text/xml', Buffer.from('<x/>')));
    expectFault(a, '', /neither SOAP 1\.2/);
    const r = await registry(ACT.query, getDocumentsQuery(['1.2']), {
      env: { soapNs: 'http://schemas.xmlsoap.org/soap/envelope/' },
    });
    expect(r.status).toBe(500);
    expect(r.fault?.code).toBe('soap:VersionMismatch');
  });

  it('malformed XML, malformed MTOM', async () => {
    const a = parseAnswer(
      await post(
        pathOf('registry'),
        'application/soap+xml; charset=UTF-8',
        Buffer.from('<soap:Envelope><oops></soap:Envelope>'),
      ),
    );
    expectFault(a, '', /malformed XML/);
    const b = parseAnswer(
      await post(
        pathOf('repository'),
        'multipart/related; boundary=x; type="application/xop+xml"',
        Buffer.from('--x\r\nContent-ID: <a>\r\n\r\nno end'),
      ),
    );
    expectFault(b, '', /malformed MTOM: no closing delimiter/);
  });

  it('WS-Addressing: MessageID, To, Action', async () => {
    const q = getDocumentsQuery(['1.2']);
    expectFault(
      await registry(ACT.query, q, { env: { messageId: null } }),
      'wsa:MessageAddressingHeaderRequired',
      /wsa:MessageID header is missing/,
    );
    expectFault(
      await registry(ACT.query, q, { env: { to: '' } }),
      'wsa:MessageAddressingHeaderRequired',
      /wsa:To header is missing/,
    );
    expectFault(
      await registry(ACT.query, q, { env: { to: `${sim.url}/repository` } }),
      'wsa:InvalidAddressingHeader',
      /wsa:To .* is not the registry endpoint/,
    );
    expectFault(
      await registry(ACT.query, q, { env: { action: '' } }),
      'wsa:MessageAddressingHeaderRequired',
      /wsa:Action header is missing/,
    );
    expectFault(
      await registry(ACT.query, q, { env: { mustUnderstand: null } }),
      'wsa:InvalidAddressingHeader',
      /mustUnderstand/,
    );
    expect((await registry(ACT.query, q, { env: { mustUnderstand: '1' } })).responseStatus).toBe('Success');
    expectFault(await registry(ACT.pnr, q), 'wsa:ActionNotSupported', /not served by the registry endpoint/);
    expectFault(
      await pnr({ env: { action: ACT.update } }),
      'wsa:ActionNotSupported',
      /not served by the repository endpoint/,
    );
    expectFault(await registry(ACT.update, q), '', /soap:Body must hold exactly one .*SubmitObjectsRequest/);
  });

  it('unknown mustUnderstand header', async () => {
    const r = await registry(ACT.query, getDocumentsQuery(['1']), {
      env: { extraHeader: '<x:Foo xmlns:x="urn:x" soap:mustUnderstand="true"/>' },
    });
    expect(r.fault?.code).toBe('soap:MustUnderstand');
  });

  it('garbage never crashes the server: every request gets an answer', async () => {
    const garbage: [string, Buffer][] = [
      ['', Buffer.alloc(0)],
      ['application/soap+xml', Buffer.from([0xff, 0xfe, 0x00, 0x3c])],
      ['application/soap+xml', Buffer.from('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')],
      [
        'application/soap+xml',
        Buffer.from(`<soap:Envelope xmlns:soap="${SOAP12}"><soap:Header/><soap:Body/></soap:Envelope>`),
      ],
      [
        'multipart/related; boundary=q; type="application/xop+xml"',
        Buffer.from('--q\r\nContent-Type: text/plain\r\n\r\nx\r\n--q--'),
      ],
      [
        'multipart/related; boundary=q; type="application/xop+xml"; start="<r>"',
        Buffer.from(
          '--q\r\nContent-ID: <r>\r\nContent-Type: application/xop+xml; type="application/soap+xml"\r\n' +
            '\r\n\u0001\r\n--q--',
        ),
      ],
    ];
    for (const [ct, body] of garbage) {
      const r = parseAnswer(await post(pathOf('repository'), ct, body));
      expect(r.status, `${ct} ${body.toString('latin1')}`).toBe(500);
      expect(r.fault?.code).toBe('soap:Sender');
    }
    expect(sim.requests().every((q) => q.status === 'Fault')).toBe(true);
  });

  it('a refused request is recorded as a Fault and stores nothing', async () => {
    await pnr({ env: { messageId: null } });
    expect(sim.documents()).toEqual([]);
    expect(sim.requests()).toMatchObject([
      { status: 'Fault', errors: [{ code: 'wsa:MessageAddressingHeaderRequired' }] },
    ]);
  });
});

describe('VIHF refusals (SOAP Fault)', () => {
  const INVALID = 'wsse:InvalidSecurity';
  const FAILED = 'wsse:FailedAuthentication';
  const q = () => getDocumentsQuery(['1.2.3']);
  const withVihf = (v: VihfOpts) => registry(ACT.query, q(), { vihf: v });

  it('the happy VIHF passes', async () => {
    expect((await withVihf({})).responseStatus).toBe('Success');
    expect((await withVihf({ attrs: { VIHF_Version: '4.0' } })).responseStatus).toBe('Success');
    expect((await withVihf({ prefixList: ['xsi', 'saml2'] })).responseStatus).toBe('Success');
  });

  it('no wsse:Security, no Assertion, two Assertions', async () => {
    expectFault(
      await registry(ACT.query, q(), { env: { security: null } }),
      INVALID,
      /wsse:Security header is missing/,
    );
    expectFault(await registry(ACT.query, q(), { env: { security: '' } }), INVALID, /no saml2:Assertion/);
    const twice = vihf() + vihf();
    expectFault(
      await registry(ACT.query, q(), { env: { security: twice } }),
      INVALID,
      /exactly one saml2:Assertion expected .*found 2/,
    );
    // A second, unsigned Assertion hidden in the body (signature wrapping).
    const wrapped = q().replace('</query:AdhocQueryRequest>', `${vihf({ unsigned: true })}</query:AdhocQueryRequest>`);
    expectFault(await registry(ACT.query, wrapped), INVALID, /exactly one saml2:Assertion/);
  });

  it('Assertion frame: Version, ID, IssueInstant, Issuer, AudienceRestriction', async () => {
    expectFault(await withVihf({ version: '1.1' }), INVALID, /@Version must be "2.0"/);
    expectFault(await withVihf({ after: (x) => x.replace(/ ID="[^"]+"/, '') }), INVALID, /@ID is missing/);
    expectFault(
      await withVihf({ issueInstant: new Date(Date.now() - 11 * 60_000).toISOString() }),
      INVALID,
      /IssueInstant .* more than 10 minutes/,
    );
    expectFault(
      await withVihf({ issueInstant: new Date(Date.now() + 11 * 60_000).toISOString() }),
      INVALID,
      /IssueInstant .* more than 10 minutes/,
    );
    expectFault(await withVihf({ issueInstant: 'yesterday' }), INVALID, /not a date-time/);
    expectFault(
      await withVihf({ after: (x) => x.replace(/<saml2:Issuer[^>]*>[^<]*<\/saml2:Issuer>/, '') }),
      INVALID,
      /saml2:Issuer is missing/,
    );
    expectFault(await withVihf({ audience: true }), INVALID, /AudienceRestriction must be absent/);
  });

  it('signature shape: absent, misplaced, Reference URI, SHA-1', async () => {
    expectFault(await withVihf({ unsigned: true }), INVALID, /no ds:Signature/);
    expectFault(await withVihf({ signatureLast: true }), INVALID, /right after saml2:Issuer/);
    expectFault(
      await withVihf({ after: (x) => x.replace(/URI="#[^"]+"/, 'URI="#_other"') }),
      INVALID,
      /ds:Reference\/@URI must be "#_/,
    );
    const sha1 = await withVihf({ sha1: true });
    expectFault(sha1, INVALID, /SignatureMethod must be rsa-sha256 .*SHA-1 is refused/);
    const digestSha1 = await withVihf({ after: (x) => x.replace(ALG.sha256, ALG.sha1) });
    expectFault(digestSha1, INVALID, /DigestMethod must be sha256 .*SHA-1 is refused/);
    expectFault(
      await withVihf({ after: (x) => x.replace(/<ds:KeyInfo>[\s\S]*<\/ds:KeyInfo>/, '') }),
      INVALID,
      /X509Certificate is missing/,
    );
  });

  it('untrusted certificate, wrong key, tampered content', async () => {
    expectFault(await withVihf({ signer: untrusted }), FAILED, /not a trusted seal certificate/);
    expectFault(
      await withVihf({ signer: { cert: pki.pem['client.crt'], key: untrusted.key } }),
      FAILED,
      /SignatureValue does not verify/,
    );
    expectFault(await withVihf({ after: (x) => x.replace('>PFI<', '>PFX<') }), FAILED, /digest does not match/);
    // The server certificate is issued by the same CA but is not a seal certificate.
    expectFault(
      await withVihf({ signer: { cert: pki.pem['server.crt'], key: pki.pem['server.key'] } }),
      FAILED,
      /not a trusted seal certificate/,
    );
  });

  it('Subject/NameID and AuthnStatement', async () => {
    expectFault(await withVihf({ nameId: '' }), INVALID, /NameID is missing or empty/);
    expectFault(await withVihf({ authn: false }), INVALID, /AuthnStatement\/@AuthnInstant is missing/);
    expectFault(await withVihf({ classRef: '' }), INVALID, /AuthnContextClassRef is missing or empty/);
  });

  const cases: [string, string | null, RegExp][] = [
    ['VIHF_Version', '2.0', /VIHF_Version must be 3\.0 or 4\.0/],
    ['VIHF_Version', null, /VIHF_Version is missing/],
    ['Authentification_Mode', 'DIRECTE', /Authentification_Mode must be INDIRECTE/],
    ['Ressource_URN', 'urn:mss', /Ressource_URN must be urn:dmp/],
    [RESOURCE, null, /resource-id is missing/],
    [RESOURCE, esc(cxOf(INS1.slice(0, 13) + '00')), /resource-id is not an INS: the matricule key is wrong/],
    [RESOURCE, esc(cxOf(INS1, '1.2.250.1.213.1.4.2')), /resource-id is not an INS: .*not an INS OID/],
    [RESOURCE, esc(cxOf('27903512151')), /resource-id is not an INS: .*15 characters/],
    ['Identifiant_Structure', '', /Identifiant_Structure must not be empty/],
    ['Secteur_Activite', 'SA01^1.2.3', /Secteur_Activite must be code\^1\.2\.250\.1\.71\.4\.2\.4/],
    ['urn:oasis:names:tc:xspa:1.0:subject:subject-id', null, /subject-id is missing/],
    [ROLE, '<Role xmlns="urn:hl7-org:v3" code="AUTOMATE"/>', /Role .* with code and codeSystem/],
    [ROLE, '<Role code="AUTOMATE" codeSystem="1.2.250.1.213.1.1.4.6"/>', /Role \(urn:hl7-org:v3\)/],
    [ROLE, null, /subject:role is missing/],
    [
      PURPOSE,
      '<PurposeOfUse xmlns="urn:hl7-org:v3" code="urgence" codeSystem="1.2.250.1.213.1.1.4.248"/>',
      /PurposeOfUse .*code="normal"/,
    ],
    [PURPOSE, null, /purposeofuse is missing/],
    ['LPS_Nom', null, /LPS_Nom is missing/],
    ['LPS_Version', '', /LPS_Version must not be empty/],
    ['LPS_ID_HOMOLOGATION_DMP', null, /LPS_ID_HOMOLOGATION_DMP is missing/],
  ];
  for (const [name, value, reason] of cases) {
    it(`attribute ${name.replace(/^.*:/, '')} = ${value === null ? '(absent)' : JSON.stringify(value).slice(0, 40)}`, async () => {
      expectFault(await withVihf({ attrs: { [name]: value } }), INVALID, reason);
    });
  }

  it('several attribute problems are named together', async () => {
    const r = await withVihf({ attrs: { LPS_Nom: null, Ressource_URN: 'x' } });
    expectFault(r, INVALID, /Ressource_URN must be urn:dmp.*; attribute LPS_Nom is missing/);
  });
});

describe('ITI-57 deletion', () => {
  it('Approved → Deleted', async () => {
    const doc = await stored();
    const r = await deleteDoc(doc.entryUUID);
    expect(r.responseStatus, r.text).toBe('Success');
    expect(r.action).toBe(`${ACT.update}Response`);
    expect(sim.documents()[0]!.status).toBe('Deleted');
  });

  it('also accepted as MTOM without attachment', async () => {
    const doc = await stored();
    const env = soapEnvelope(
      updateDocumentSetRequest(newSet(), [{ entryUUID: doc.entryUUID, from: ST.approved }], ST.deleted),
      { action: ACT.update, endpoint: 'registry' },
    );
    const m = buildMtom(env, [], ACT.update);
    const r = parseAnswer(await post(pathOf('registry'), m.contentType, m.chunks));
    expect(r.responseStatus, r.text).toBe('Success');
  });

  it('unknown document', async () => {
    expectFailure(await deleteDoc(`urn:uuid:${randomUUID()}`), 'XDSRegistryError', /unknown document/);
  });

  it('OriginalStatus that does not match; a Deprecated entry deleted with OriginalStatus Deprecated', async () => {
    const old = await stored();
    expectFailure(await deleteDoc(old.entryUUID, { from: ST.deprecated }), 'XDSRegistryError', /status does not match/);
    await pnr({ ebrim: { replaces: { entryUUID: old.entryUUID } } });
    expectFailure(await deleteDoc(old.entryUUID), 'XDSRegistryError', /status does not match/);
    expect((await deleteDoc(old.entryUUID, { from: ST.deprecated })).responseStatus).toBe('Success');
  });

  it('NewStatus Archived (not supported) or outside JDV_J52', async () => {
    const doc = await stored();
    expectFailure(
      await deleteDoc(doc.entryUUID, { to: ST.archived }),
      'XDSRegistryError',
      /not supported by the simulator/,
    );
    expectFailure(
      await deleteDoc(doc.entryUUID, { to: ST.deprecated }),
      'XDSRegistryMetadataError',
      /NewStatus .* is not allowed/,
    );
    expect(sim.documents()[0]!.status).toBe('Approved');
  });

  it('document of another patient', async () => {
    const other = newEntry(cda(), { patientId: patient(INS2) });
    await pnr({ set: newSet(INS2), docs: [{ entry: other, content: cda() }], vihf: { patient: cxOf(INS2) } });
    expectFailure(await deleteDoc(other.entryUUID), 'XDSPatientIdDoesNotMatch', /belongs to another patient/);
    // SubmissionSet and VIHF of patient 3, target of patient 2.
    expectFailure(
      await deleteDoc(other.entryUUID, { set: newSet(INS3), vihf: { patient: cxOf(INS3) } }),
      'XDSPatientIdDoesNotMatch',
    );
    expect(sim.documents()[0]!.status).toBe('Approved');
  });

  it('patient closed or without DMP', async () => {
    const doc = await stored();
    sim.setPatient(INS1, 'closed');
    expectFailure(await deleteDoc(doc.entryUUID), 'DMPClosed');
    sim.setPatient(INS1, 'none');
    expectFailure(await deleteDoc(doc.entryUUID), 'DMPNotFound', /no DMP for this patient/);
    expect(sim.documents()[0]!.status).toBe('Approved');
  });

  it('SubmissionSet attributes are required', async () => {
    const doc = await stored();
    const body = mutate(
      updateDocumentSetRequest(newSet(), [{ entryUUID: doc.entryUUID, from: ST.approved }], ST.deleted),
      (d) => remove(byScheme(all(d, 'RegistryPackage')[0]!, SS.sourceId)),
    );
    expectFailure(await registry(ACT.update, body), 'XDSRegistryMetadataError', /required attribute sourceId/);
  });
});

describe('ITI-18 GetDocuments', () => {
  it('finds by uniqueId with the current status, only for the VIHF patient', async () => {
    const a = await stored();
    const b = await stored();
    await deleteDoc(b.entryUUID);
    const other = newEntry(cda(), { patientId: patient(INS2) });
    await pnr({ set: newSet(INS2), docs: [{ entry: other, content: cda() }], vihf: { patient: cxOf(INS2) } });
    const r = await query([a.uniqueId, b.uniqueId, other.uniqueId, '9.9.9']);
    expect(r.responseStatus, r.text).toBe('Success');
    expect(r.action).toBe(`${ACT.query}Response`);
    expect(r.objects).toEqual([
      { id: a.entryUUID, status: ST.approved, uniqueId: a.uniqueId },
      { id: b.entryUUID, status: ST.deleted, uniqueId: b.uniqueId },
    ]);
    expect(r.text).toContain(cxOf(INS1).replace(/&/g, '&amp;'));
  });

  it('unsupported query id', async () => {
    const body = getDocumentsQuery(['1']).replace(
      'urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4',
      'urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d',
    );
    expectFailure(await registry(ACT.query, body), 'XDSRegistryError', /unsupported query urn:uuid:14d4debf/);
  });
});

describe('failure injection', () => {
  it('http500: HTML body, store unchanged, next request normal', async () => {
    sim.failNext(1, 'http500');
    const r = await pnr();
    expect(r.status).toBe(500);
    expect(r.contentType).toBe('text/html');
    expect(r.text).toMatch(/Internal Server Error/);
    expect(sim.documents()).toEqual([]);
    expect((await pnr()).responseStatus).toBe('Success');
    expect(sim.requests().map((q) => q.status)).toEqual(['HTTP', 'Success']);
  });

  it('busy: RegistryResponse Failure XDSRegistryBusy, store unchanged', async () => {
    sim.failNext(2, 'busy');
    const r = await pnr({ env: { messageId: 'urn:uuid:busy-1' } });
    expectFailure(r, 'XDSRegistryBusy');
    expect(r.relatesTo).toBe('urn:uuid:busy-1');
    expectFailure(await query(['1']), 'XDSRegistryBusy');
    expect(sim.documents()).toEqual([]);
    expect(sim.requests()).toMatchObject([
      { action: ACT.pnr, status: 'Failure' },
      { action: ACT.query, status: 'Failure' },
    ]);
  });

  it('timeout: held, never answered, socket destroyed after timeoutMs', async () => {
    sim.failNext(1, 'timeout');
    const t0 = Date.now();
    await expect(pnr()).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect(sim.documents()).toEqual([]);
  });

  it('reset: the connection is dropped', async () => {
    sim.failNext(1, 'reset');
    await expect(pnr()).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(sim.documents()).toEqual([]);
    expect(sim.requests()).toMatchObject([{ status: 'HTTP', errors: [{ code: 'reset' }] }]);
  });

  it('slow: answers normally after delayMs', async () => {
    sim.failNext(1, 'slow', { delayMs: 300 });
    const t0 = Date.now();
    expect((await pnr()).responseStatus).toBe('Success');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(sim.documents()).toHaveLength(1);
  });
});

describe('admin surface', () => {
  const admin = (route: string, body?: unknown, tls?: { cert?: Buffer; key?: Buffer }) =>
    post(
      `${new URL(sim.url).pathname}/_sim/${route}`,
      'application/json',
      Buffer.from(body === undefined ? '' : JSON.stringify(body)),
      tls,
      body === undefined ? 'GET' : 'POST',
    );

  it('documents without content, patients, fail, reset', async () => {
    await stored();
    const list = JSON.parse((await admin('documents')).text) as Record<string, unknown>[];
    expect(list).toHaveLength(1);
    expect(list[0]).not.toHaveProperty('content');
    expect(list[0]).toMatchObject({ status: 'Approved', contentLength: cda().length });

    expect((await admin('patients', { ins: INS1, state: 'closed' })).status).toBe(200);
    expectFailure(await pnr(), 'DMPClosed');
    expect((await admin('patients', { ins: INS1, state: 'gone' })).status).toBe(400);

    expect((await admin('fail', { count: 1, mode: 'http500' })).status).toBe(200);
    expect((await pnr()).status).toBe(500);
    expect((await admin('fail', { count: 0, mode: 'http500' })).status).toBe(400);

    expect((await admin('reset', {})).status).toBe(200);
    expect(sim.documents()).toEqual([]);
    expect(sim.requests()).toEqual([]);
    expect((await pnr()).responseStatus).toBe('Success');
  });

  it('needs the client certificate too', async () => {
    await expect(admin('documents', undefined, {})).rejects.toThrow();
  });
});

describe('pfi sim dmp (argument checks)', () => {
  it('names the missing options and bad values', async () => {
    await expect(simCommand(['dmp', '--cert', pki.files['server.crt']])).rejects.toThrow(
      /missing required options: --key, --ca, --seal-cert/,
    );
    await expect(simCommand(['mss'])).rejects.toThrow(/unknown simulator "mss"/);
    const base = [
      'dmp',
      '--cert',
      pki.files['server.crt'],
      '--key',
      pki.files['server.key'],
      '--ca',
      pki.files['ca.crt'],
      '--seal-cert',
      pki.files['client.crt'],
    ];
    await expect(simCommand([...base, '--unknown-patients', 'maybe'])).rejects.toThrow(
      /--unknown-patients maybe: expected open, closed or none/,
    );
    await expect(simCommand([...base, '--port', 'x'])).rejects.toThrow(/--port x: not a port number/);
    await expect(simCommand([...base.slice(0, -1), '/nonexistent.crt'])).rejects.toThrow(
      /--seal-cert \/nonexistent\.crt: ENOENT/,
    );
  });
});
