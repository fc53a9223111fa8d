/**
 * SOAP 1.2 with WS-Addressing and WS-Security as the DMP wants it (docs/dmp-notes.md §2), and the
 * reading of its answers: ebRIM RegistryResponse, AdhocQueryResponse, or a SOAP Fault.
 */
import { randomUUID } from 'node:crypto';
import { PfiError } from '../errors.js';
import { xmlEscape } from '../util/xml-text.js';
import { xmlReader } from '../xml/read.js';

export const ACTION = {
  provideAndRegister: 'urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b',
  updateDocumentSet: 'urn:ihe:iti:2010:UpdateDocumentSet',
  storedQuery: 'urn:ihe:iti:2007:RegistryStoredQuery',
} as const;

const NS_SOAP = 'http://www.w3.org/2003/05/soap-envelope';
const NS_WSA = 'http://www.w3.org/2005/08/addressing';
const NS_WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';

const escapeText = xmlEscape;

/**
 * The envelope, as text: the signed assertion and the body are inserted verbatim (re-serialising a
 * signed assertion is how signatures break).
 */
export function soapEnvelope(p: {
  action: string;
  to: string;
  assertion: string;
  body: string;
  messageId?: string;
}): string {
  const id = p.messageId ?? `urn:uuid:${randomUUID()}`;
  return (
    `<soap:Envelope xmlns:soap="${NS_SOAP}" xmlns:wsa="${NS_WSA}">` +
    `<soap:Header>` +
    `<wsa:MessageID>${escapeText(id)}</wsa:MessageID>` +
    `<wsa:To>${escapeText(p.to)}</wsa:To>` +
    `<wsa:Action soap:mustUnderstand="true">${escapeText(p.action)}</wsa:Action>` +
    `<wsse:Security xmlns:wsse="${NS_WSSE}" soap:mustUnderstand="true">${p.assertion}</wsse:Security>` +
    `</soap:Header>` +
    `<soap:Body>${p.body}</soap:Body>` +
    `</soap:Envelope>`
  );
}

export interface RegistryError {
  code: string;
  context: string;
  severity: 'Error' | 'Warning';
  location?: string;
}

export type DmpAnswer =
  | { kind: 'registry'; status: 'Success' | 'PartialSuccess' | 'Failure'; errors: RegistryError[] }
  | {
      kind: 'query';
      status: 'Success' | 'PartialSuccess' | 'Failure';
      errors: RegistryError[];
      documents: FoundDocument[];
    }
  | { kind: 'fault'; code: string; subcode?: string; reason: string };

export interface FoundDocument {
  entryUUID: string;
  /** Last segment of the ebRIM status URN: Approved, Deprecated, Deleted, Archived. */
  status: string;
  uniqueId?: string;
}

/** A DMP answer we cannot read: treated like a transport failure (the DMP may have done it or not). */
export class SoapError extends PfiError {
  constructor(message: string) {
    super('soap', message);
  }
}

const read = xmlReader({ arrays: ['RegistryError', 'ExtrinsicObject', 'ExternalIdentifier', 'Subcode', 'Text'] });

type Node = Record<string, unknown>;
const obj = (v: unknown): Node | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : undefined;
const text = (v: unknown): string =>
  typeof v === 'string' || typeof v === 'number' ? String(v) : ((obj(v)?.['#text'] as string | undefined) ?? '');
const last = (urn: unknown): string =>
  String(urn ?? '')
    .split(':')
    .pop() ?? '';

function registryErrors(list: unknown): RegistryError[] {
  const errors = (obj(list)?.RegistryError as Node[] | undefined) ?? [];
  return errors.map((e) => ({
    code: String(e['@errorCode'] ?? ''),
    context: String(e['@codeContext'] ?? text(e)),
    severity: last(e['@severity']) === 'Warning' ? 'Warning' : 'Error',
    ...(e['@location'] ? { location: String(e['@location']) } : {}),
  }));
}

function status(v: unknown): 'Success' | 'PartialSuccess' | 'Failure' {
  const s = last(v);
  if (s === 'Success' || s === 'PartialSuccess' || s === 'Failure') return s;
  throw new SoapError(`unknown response status "${String(v)}"`);
}

export function parseDmpAnswer(xml: string): DmpAnswer {
  let doc: Node;
  try {
    doc = read(xml) as Node;
  } catch (e) {
    throw new SoapError(`the DMP's answer is not XML: ${(e as Error).message}`);
  }
  const body = obj(obj(doc.Envelope)?.Body);
  if (!body) throw new SoapError('the DMP answered without a SOAP 1.2 Body');
  const fault = obj(body.Fault);
  if (fault) {
    const code = obj(fault.Code);
    const sub = (code?.Subcode as Node[] | undefined)?.[0];
    const reasons = (obj(fault.Reason)?.Text as unknown[] | undefined) ?? [];
    return {
      kind: 'fault',
      code: text(code?.Value),
      ...(sub ? { subcode: text(sub.Value) } : {}),
      reason: reasons.map(text).join(' '),
    };
  }
  const rr = obj(body.RegistryResponse);
  if (rr) return { kind: 'registry', status: status(rr['@status']), errors: registryErrors(rr.RegistryErrorList) };
  const qr = obj(body.AdhocQueryResponse);
  if (qr) {
    const objects = (obj(qr.RegistryObjectList)?.ExtrinsicObject as Node[] | undefined) ?? [];
    const documents = objects.map((o) => ({
      entryUUID: String(o['@id'] ?? ''),
      status: last(o['@status']),
      uniqueId: ((o.ExternalIdentifier as Node[] | undefined) ?? []).find(
        (x) => x['@identificationScheme'] === 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
      )?.['@value'] as string | undefined,
    }));
    return { kind: 'query', status: status(qr['@status']), errors: registryErrors(qr.RegistryErrorList), documents };
  }
  throw new SoapError(`the DMP answered with an unexpected body (${Object.keys(body).join(', ') || 'empty'})`);
}
