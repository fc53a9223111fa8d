import { X509Certificate } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { buildVihf, NS_SAML, ROLE_AUTOMATE, signVihf, subjectDn, vihf, type VihfInput } from '../../src/dmp/vihf.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const HL7 = 'urn:hl7-org:v3';

const input: VihfInput = {
  ins: { matricule: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
  structureId: '300017985',
  sector: 'SA01^1.2.250.1.71.4.2.4',
  nameId: '801234564895',
  subjectId: 'pfi-engine, pfi-engine',
  roles: [ROLE_AUTOMATE],
  authnContext: 'urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified',
  version: '4.0',
  lps: { name: 'pfi-engine', version: '0.1.0', homologation: 'HOMOLOG-42', id: '1.2.250.1.999.7' },
  confidentiality: { code: 'R', codeSystem: '2.16.840.1.113883.5.25', displayName: 'Restreint' },
  now: new Date('2026-11-21T10:00:00Z'),
};

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});

function parse(xml: string) {
  return new DOMParser().parseFromString(xml, 'text/xml').documentElement!;
}

/** The verification a DMP does: the signature, with the certificate the structure registered. */
function verify(xml: string, cert: Buffer): boolean {
  const root = parse(xml);
  const sig = root.getElementsByTagNameNS(DSIG, 'Signature')[0]!;
  const v = new SignedXml({ publicCert: cert });
  v.loadSignature(sig);
  try {
    return v.checkSignature(xml);
  } catch {
    return false;
  }
}

function attributes(xml: string): Map<string, Element[]> {
  const out = new Map<string, Element[]>();
  const attrs = parse(xml).getElementsByTagNameNS(NS_SAML, 'Attribute');
  for (let i = 0; i < attrs.length; i++) {
    const a = attrs[i]!;
    const values = a.getElementsByTagNameNS(NS_SAML, 'AttributeValue');
    out.set(
      a.getAttribute('Name')!,
      Array.from({ length: values.length }, (_, k) => values[k]!),
    );
  }
  return out;
}

describe('VIHF (mapping.md, "Mapping VIHF pour le DMP")', () => {
  test('signed with the seal certificate: it verifies with that certificate, not with another one', () => {
    const seal = { cert: pki.pem['client.crt'], key: pki.pem['client.key'] };
    const xml = vihf(input, seal);
    expect(verify(xml, pki.pem['client.crt'])).toBe(true);
    expect(verify(xml, pki.pem['server.crt'])).toBe(false);
  });

  test('a changed attribute breaks the signature', () => {
    const xml = vihf(input, { cert: pki.pem['client.crt'], key: pki.pem['client.key'] });
    const tampered = xml.replace('279035121518989^^^', '279035121518990^^^');
    expect(tampered).not.toBe(xml);
    expect(verify(tampered, pki.pem['client.crt'])).toBe(false);
  });

  test(
    'signature: enveloped, exclusive c14n, RSA-SHA256, ' +
      'SHA-256 digest, the certificate in KeyInfo, placed after Issuer',
    () => {
      const xml = vihf(input, { cert: pki.pem['client.crt'], key: pki.pem['client.key'] });
      const root = parse(xml);
      const id = root.getAttribute('ID')!;
      expect(id).toMatch(/^_[0-9a-f-]{36}$/);
      const sig = root.getElementsByTagNameNS(DSIG, 'Signature')[0]!;
      expect((sig.previousSibling as Element).localName).toBe('Issuer');
      const alg = (name: string) => (sig.getElementsByTagNameNS(DSIG, name)[0] as Element).getAttribute('Algorithm');
      expect(alg('CanonicalizationMethod')).toBe('http://www.w3.org/2001/10/xml-exc-c14n#');
      expect(alg('SignatureMethod')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
      expect(alg('DigestMethod')).toBe('http://www.w3.org/2001/04/xmlenc#sha256');
      const transforms = sig.getElementsByTagNameNS(DSIG, 'Transform');
      expect([0, 1].map((i) => transforms[i]!.getAttribute('Algorithm'))).toEqual([
        'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
        'http://www.w3.org/2001/10/xml-exc-c14n#',
      ]);
      expect(sig.getElementsByTagNameNS(DSIG, 'Reference')[0]!.getAttribute('URI')).toBe(`#${id}`);
      const b64 = sig.getElementsByTagNameNS(DSIG, 'X509Certificate')[0]!.textContent!;
      expect(Buffer.from(b64, 'base64').equals(new X509Certificate(pki.pem['client.crt']).raw)).toBe(true);
    },
  );

  test(
    'frame: Version 2.0, Issuer = the seal certificate’s DN ' +
      '(X509SubjectName), NameID, AuthnStatement, no AudienceRestriction',
    () => {
      const xml = vihf(input, { cert: pki.pem['client.crt'], key: pki.pem['client.key'] });
      const root = parse(xml);
      expect(root.getAttribute('Version')).toBe('2.0');
      expect(root.getAttribute('IssueInstant')).toBe('2026-11-21T10:00:00.000Z');
      const issuer = root.getElementsByTagNameNS(NS_SAML, 'Issuer')[0]!;
      expect(issuer.getAttribute('Format')).toBe('urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName');
      expect(issuer.textContent).toBe('CN=emetteur-test,O=PFI Test');
      expect(issuer.textContent).toBe(subjectDn(pki.pem['client.crt']));
      expect(root.getElementsByTagNameNS(NS_SAML, 'NameID')[0]!.textContent).toBe('801234564895');
      expect(root.getElementsByTagNameNS(NS_SAML, 'AuthnStatement')[0]!.getAttribute('AuthnInstant')).toBe(
        '2026-11-21T10:00:00.000Z',
      );
      expect(root.getElementsByTagNameNS(NS_SAML, 'AuthnContextClassRef')[0]!.textContent).toBe(
        'urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified',
      );
      expect(root.getElementsByTagNameNS(NS_SAML, 'AudienceRestriction')).toHaveLength(0);
    },
  );

  test('every attribute of the mapping, by value', () => {
    const a = attributes(vihf(input, { cert: pki.pem['client.crt'], key: pki.pem['client.key'] }));
    const text = (name: string) => a.get(name)?.map((v) => v.textContent);
    expect(text('VIHF_Version')).toEqual(['4.0']);
    expect(text('Authentification_Mode')).toEqual(['INDIRECTE']);
    expect(text('Ressource_URN')).toEqual(['urn:dmp']);
    expect(text('urn:oasis:names:tc:xacml:2.0:resource:resource-id')).toEqual([
      '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH',
    ]);
    expect(text('Identifiant_Structure')).toEqual(['300017985']);
    expect(text('Secteur_Activite')).toEqual(['SA01^1.2.250.1.71.4.2.4']);
    expect(text('urn:oasis:names:tc:xspa:1.0:subject:subject-id')).toEqual(['pfi-engine, pfi-engine']);
    expect(text('LPS_ID')).toEqual(['1.2.250.1.999.7']);
    expect(text('LPS_Nom')).toEqual(['pfi-engine']);
    expect(text('LPS_Version')).toEqual(['0.1.0']);
    expect(text('LPS_ID_HOMOLOGATION_DMP')).toEqual(['HOMOLOG-42']);
    const coded = (name: string, element: string) => {
      const el = a.get(name)![0]!.getElementsByTagNameNS(HL7, element)[0]!;
      return Object.fromEntries(
        ['code', 'codeSystem', 'codeSystemName', 'displayName']
          .map((k) => [k, el.getAttribute(k)])
          .filter(([, v]) => v),
      );
    };
    expect(coded('urn:oasis:names:tc:xacml:2.0:subject:role', 'Role')).toEqual({
      code: 'AUTOMATE',
      codeSystem: '1.2.250.1.213.1.1.4.6',
      displayName: 'AUTOMATE',
    });
    expect(coded('urn:oasis:names:tc:xspa:1.0:subject:purposeofuse', 'PurposeOfUse')).toEqual({
      code: 'normal',
      codeSystem: '1.2.250.1.213.1.1.4.248',
      codeSystemName: 'mode acces VIHF 1.0',
      displayName: 'Accès normal',
    });
    expect(
      coded('urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code', 'ConfidentialityCode'),
    ).toEqual({ code: 'R', codeSystem: '2.16.840.1.113883.5.25', displayName: 'Restreint' });
  });

  test('no confidentiality-code without a secret connection; no LPS_ID when not configured', () => {
    const { confidentiality: _c, ...plain } = input;
    const a = attributes(buildVihf({ ...plain, lps: { name: 'x', version: '1', homologation: 'h' } }, 'CN=x'));
    expect(a.has('urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code')).toBe(false);
    expect(a.has('LPS_ID')).toBe(false);
  });

  test(
    'the signed assertion keeps verifying once embedded in a SOAP header with other namespaces ' + '(exclusive c14n)',
    () => {
      const seal = { cert: pki.pem['client.crt'], key: pki.pem['client.key'] };
      const assertion = signVihf(buildVihf(input, subjectDn(seal.cert)), seal);
      const envelope = `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns="urn:other"><soap:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">${assertion}</wsse:Security></soap:Header><soap:Body/></soap:Envelope>`;
      expect(verify(envelope, seal.cert)).toBe(true);
    },
  );
});
