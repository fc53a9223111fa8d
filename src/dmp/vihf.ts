/**
 * The VIHF: the SAML 2.0 assertion that says who calls the DMP, for which patient, with which
 * software, signed with the care structure's seal certificate. Built per the volet's mapping.md
 * ("Mapping VIHF pour le DMP") in indirect authentication (the PFI is an automated processing).
 */
import { createPrivateKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { create } from 'xmlbuilder2';
import { builderText } from '../util/xml-text.js';

export const NS_SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_HL7 = 'urn:hl7-org:v3';
const NS_XSI = 'http://www.w3.org/2001/XMLSchema-instance';
const NS_XMLNS = 'http://www.w3.org/2000/xmlns/';

export const VIHF_ATTR = {
  version: 'VIHF_Version',
  mode: 'Authentification_Mode',
  resourceUrn: 'Ressource_URN',
  resourceId: 'urn:oasis:names:tc:xacml:2.0:resource:resource-id',
  structure: 'Identifiant_Structure',
  sector: 'Secteur_Activite',
  subjectId: 'urn:oasis:names:tc:xspa:1.0:subject:subject-id',
  role: 'urn:oasis:names:tc:xacml:2.0:subject:role',
  purposeOfUse: 'urn:oasis:names:tc:xspa:1.0:subject:purposeofuse',
  confidentiality: 'urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code',
  lpsId: 'LPS_ID',
  lpsName: 'LPS_Nom',
  lpsVersion: 'LPS_Version',
  homologation: 'LPS_ID_HOMOLOGATION_DMP',
} as const;

/** A coded value of the VIHF (HL7 v3 CE). */
export interface VihfCode {
  code: string;
  codeSystem: string;
  codeSystemName?: string;
  displayName?: string;
}

/** The IG's "Stratégie 1": the PFI signs as an automated processing. */
export const ROLE_AUTOMATE: VihfCode = {
  code: 'AUTOMATE',
  codeSystem: '1.2.250.1.213.1.1.4.6',
  displayName: 'AUTOMATE',
};

export interface VihfInput {
  /** The patient: resource-id, the same INS as the submission's patientId. */
  ins: { matricule: string; oid: string };
  /** Struct_IdNat of the care structure (PRT-8.10 of the PRT SB, or the channel's setting). */
  structureId: string;
  /** `code^1.2.250.1.71.4.2.4` (JDV_J61). */
  sector: string;
  /** NameID: the professional, or the person responsible for the automated processing. */
  nameId: string;
  /** subject-id: "Nom, Prénom", or for an automate "software, model". */
  subjectId: string;
  roles: VihfCode[];
  authnContext: string;
  version: string;
  lps: { name: string; version: string; homologation: string; id?: string };
  /** Required when the CREATEUR asks for a secret connection (CONNEXION_SECRETE = Y). */
  confidentiality?: VihfCode;
  now?: Date;
}

export interface SealKey {
  /** PEM certificate of the seal ("cachet") of the care structure. */
  cert: Buffer | string;
  /** Its PEM private key. */
  key: Buffer | string;
}

/** Subject DN in RFC 2253 order (most specific first), as SAML's X509SubjectName wants it. */
export function subjectDn(certPem: Buffer | string): string {
  return new X509Certificate(certPem).subject.split('\n').reverse().join(',');
}

function ce(parent: ReturnType<typeof create>, name: string, c: VihfCode): void {
  const e = parent.ele(NS_HL7, name).att(NS_XSI, 'xsi:type', 'CE').att('code', c.code).att('codeSystem', c.codeSystem);
  if (c.codeSystemName) e.att('codeSystemName', c.codeSystemName);
  if (c.displayName) e.att('displayName', builderText(c.displayName));
}

/** The unsigned assertion (XML text, no declaration). */
export function buildVihf(input: VihfInput, issuer: string, id = `_${randomUUID()}`): string {
  const now = (input.now ?? new Date()).toISOString();
  const doc = create();
  const a = doc
    .ele(NS_SAML, 'saml2:Assertion')
    .att(NS_XMLNS, 'xmlns:xsi', NS_XSI)
    .att('ID', id)
    .att('IssueInstant', now)
    .att('Version', '2.0');
  a.ele(NS_SAML, 'saml2:Issuer')
    .att('Format', 'urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName')
    .txt(builderText(issuer));
  a.ele(NS_SAML, 'saml2:Subject').ele(NS_SAML, 'saml2:NameID').txt(builderText(input.nameId));
  a.ele(NS_SAML, 'saml2:AuthnStatement')
    .att('AuthnInstant', now)
    .ele(NS_SAML, 'saml2:AuthnContext')
    .ele(NS_SAML, 'saml2:AuthnContextClassRef')
    .txt(input.authnContext);
  const statement = a.ele(NS_SAML, 'saml2:AttributeStatement');
  const attr = (name: string) => statement.ele(NS_SAML, 'saml2:Attribute').att('Name', name);
  const text = (name: string, value: string) => attr(name).ele(NS_SAML, 'saml2:AttributeValue').txt(builderText(value));
  text(VIHF_ATTR.version, input.version);
  text(VIHF_ATTR.mode, 'INDIRECTE');
  text(VIHF_ATTR.resourceUrn, 'urn:dmp');
  text(VIHF_ATTR.resourceId, `${input.ins.matricule}^^^&${input.ins.oid}&ISO^NH`);
  text(VIHF_ATTR.structure, input.structureId);
  text(VIHF_ATTR.sector, input.sector);
  text(VIHF_ATTR.subjectId, input.subjectId);
  const roles = attr(VIHF_ATTR.role);
  for (const r of input.roles) ce(roles.ele(NS_SAML, 'saml2:AttributeValue'), 'Role', r);
  ce(attr(VIHF_ATTR.purposeOfUse).ele(NS_SAML, 'saml2:AttributeValue'), 'PurposeOfUse', {
    code: 'normal',
    codeSystem: '1.2.250.1.213.1.1.4.248',
    codeSystemName: 'mode acces VIHF 1.0',
    displayName: 'Accès normal',
  });
  if (input.confidentiality)
    ce(
      attr(VIHF_ATTR.confidentiality).ele(NS_SAML, 'saml2:AttributeValue'),
      'ConfidentialityCode',
      input.confidentiality,
    );
  if (input.lps.id) text(VIHF_ATTR.lpsId, input.lps.id);
  text(VIHF_ATTR.lpsName, input.lps.name);
  text(VIHF_ATTR.lpsVersion, input.lps.version);
  text(VIHF_ATTR.homologation, input.lps.homologation);
  return doc.end({ headless: true });
}

const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';

/**
 * Enveloped XML-DSig over the assertion (exclusive c14n, RSA-SHA256), placed right after Issuer as
 * the SAML schema orders it. Signed standalone: exclusive c14n keeps the digest valid once the
 * assertion sits in the SOAP header.
 */
export function signVihf(assertion: string, seal: SealKey): string {
  const { der: certB64, key } = parsed(seal);
  const sig = new SignedXml({
    privateKey: key,
    idAttribute: 'ID',
    canonicalizationAlgorithm: EXC_C14N,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    getKeyInfoContent: () => `<ds:X509Data><ds:X509Certificate>${certB64}</ds:X509Certificate></ds:X509Data>`,
  });
  sig.addReference({
    xpath: "/*[local-name(.)='Assertion']",
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', EXC_C14N],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(assertion, {
    prefix: 'ds',
    location: { reference: "/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}

/** The seal's certificate and key read once (PEM and X.509 parsing were a visible share of a DMP call). */
const seals = new WeakMap<SealKey, { dn: string; der: string; key: KeyObject }>();
function parsed(seal: SealKey): { dn: string; der: string; key: KeyObject } {
  let c = seals.get(seal);
  if (!c)
    seals.set(
      seal,
      (c = {
        dn: subjectDn(seal.cert),
        der: new X509Certificate(seal.cert).raw.toString('base64'),
        key: createPrivateKey(seal.key),
      }),
    );
  return c;
}

/** Built and signed: what goes into wsse:Security. */
export function vihf(input: VihfInput, seal: SealKey): string {
  return signVihf(buildVihf(input, parsed(seal).dn), seal);
}
