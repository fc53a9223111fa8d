/**
 * Reading an ebRIM 3.0 SubmitObjectsRequest (ITI TF-3 §4.2, §4.2.3): the SubmissionSet, its
 * DocumentEntries with the metadata a receiver needs, and the RPLC associations. The writer is
 * ebrim.ts. Strict: well-formed XML, no DOCTYPE (src/xml); a missing required part is an EbrimError
 * naming it.
 */
import { PfiError } from '../errors.js';
import { attr, decodeXml, nodes, xmlReader, XmlError, type XmlNode as Node } from '../xml/read.js';
import { XDS_UUID } from './ebrim.js';

/** A SubmitObjectsRequest that cannot be read; the message names the part, never patient data. */
export class EbrimError extends PfiError {
  override name = 'EbrimError';
  constructor(message: string) {
    super('xds-metadata', message);
  }
}

/** A SubmitObjectsRequest for 200 documents is about 1 MiB; past this, not parsed. */
export const MAX_EBRIM_BYTES = 16 * 1024 * 1024;

export interface EbrimDocumentEntry {
  uniqueId: string;
  entryUUID: string;
  typeCode?: { code: string; scheme: string; display?: string };
  title?: string;
  mimeType: string;
  hash?: string;
  /** The size slot as written (the caller checks it is a number). */
  size?: string;
  /** CX as written, e.g. `279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH`. */
  patientId?: string;
  creationTime?: string;
  formatCode?: string;
  confidentialityCodes: string[];
  /** The URI slot (joined when split in `1|...`, `2|...` values). */
  uri?: string;
  /** Every slot of the ExtrinsicObject, by name (e.g. XDM's `action`). */
  slots: Map<string, string[]>;
}

export interface EbrimSubmissionSet {
  uniqueId?: string;
  sourceId?: string;
  patientId?: string;
  submissionTime?: string;
  authorPerson?: string;
  authorInstitution?: string[];
}

export interface SubmitObjectsRequest {
  submissionSet: EbrimSubmissionSet;
  entries: EbrimDocumentEntry[];
  /** RPLC associations: sourceObject (an entry id) → targetObject. */
  rplc: Map<string, string>;
}

const ARRAYS = [
  'RegistryPackage',
  'ExtrinsicObject',
  'Association',
  'Classification',
  'ExternalIdentifier',
  'Slot',
  'Value',
  'LocalizedString',
];
const read = xmlReader({ arrays: ARRAYS });

export function readSubmitObjectsRequest(bytes: Buffer): SubmitObjectsRequest {
  if (bytes.length > MAX_EBRIM_BYTES)
    throw new EbrimError(`${bytes.length} bytes, over the limit of ${MAX_EBRIM_BYTES} for metadata`);
  const text = decodeXml(bytes);
  if (text === undefined) throw new EbrimError('not XML: bytes invalid in its encoding');
  let doc: Node;
  try {
    doc = read(text) as Node;
  } catch (e) {
    throw new EbrimError(
      e instanceof XmlError ? e.message.replace(/^not well-formed XML/, 'not XML') : `not readable XML (${String(e)})`,
    );
  }
  const roots = Object.keys(doc).filter((k) => !k.startsWith('?') && !k.startsWith('#'));
  if (roots.length !== 1 || roots[0] !== 'SubmitObjectsRequest') {
    throw new EbrimError(`root element is ${roots.join(', ') || '(none)'}, expected an ebRIM lcm:SubmitObjectsRequest`);
  }
  const request = nodes(doc.SubmitObjectsRequest)[0];
  if (request?.RegistryObjectList === undefined)
    throw new EbrimError('no rim:RegistryObjectList in the SubmitObjectsRequest');
  const list = nodes(request.RegistryObjectList)[0] ?? {}; // an empty element parses as ''
  const eos = nodes(list.ExtrinsicObject);
  if (eos.length === 0) throw new EbrimError('no rim:ExtrinsicObject (DocumentEntry) in the SubmitObjectsRequest');
  // Classifications may also stand alone in the list, pointing at their object by classifiedObject.
  const loose = nodes(list.Classification);
  const entries = eos.map((eo, i) => documentEntry(eo, i, loose));

  const rplc = new Map<string, string>();
  for (const as of nodes(list.Association)) {
    const type = attr(as, 'associationType') ?? '';
    const source = attr(as, 'sourceObject');
    const target = attr(as, 'targetObject');
    if (/(^|:)(RPLC|XFRM_RPLC)$/.test(type) && source && target) rplc.set(source, target);
  }
  return { submissionSet: submissionSet(list, loose), entries, rplc };
}

function documentEntry(eo: Node, i: number, loose: Node[]): EbrimDocumentEntry {
  const D = XDS_UUID.documentEntry;
  const id = attr(eo, 'id');
  if (!id) throw new EbrimError(`ExtrinsicObject #${i + 1} has no id`);
  const uniqueId = externalId(eo, D.uniqueId);
  if (!uniqueId) throw new EbrimError(`ExtrinsicObject ${id} has no XDSDocumentEntry.uniqueId`);
  const classes = (scheme: string) => classifications(eo, id, scheme, loose);
  const slots = new Map(nodes(eo.Slot).map((x) => [attr(x, 'name') ?? '', values(x)]));
  const entry: EbrimDocumentEntry = {
    uniqueId,
    entryUUID: id,
    mimeType: attr(eo, 'mimeType') ?? '',
    confidentialityCodes: classes(D.confidentialityCode)
      .map((c) => attr(c, 'nodeRepresentation'))
      .filter((c): c is string => !!c),
    slots,
  };
  const type = classes(D.typeCode)[0];
  const typeCode = attr(type, 'nodeRepresentation');
  if (type && typeCode) {
    entry.typeCode = { code: typeCode, scheme: slot(type, 'codingScheme')[0] ?? '' };
    const display = localized(type);
    if (display) entry.typeCode.display = display;
  }
  const optional = {
    title: localized(eo),
    hash: slots.get('hash')?.[0],
    size: slots.get('size')?.[0],
    patientId: externalId(eo, D.patientId),
    creationTime: slots.get('creationTime')?.[0],
    formatCode: attr(classes(D.formatCode)[0], 'nodeRepresentation'),
    uri: joinUri(slots.get('URI') ?? []),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(entry, { [k]: v });
  return entry;
}

/** The RegistryPackage that is the SubmissionSet (classified so, or holding its uniqueId). */
function submissionSet(list: Node, loose: Node[]): EbrimSubmissionSet {
  const S = XDS_UUID.submissionSet;
  const packages = nodes(list.RegistryPackage);
  const isSet = (p: Node) =>
    externalId(p, S.uniqueId) !== undefined ||
    nodes(p.Classification).some((c) => attr(c, 'classificationNode') === S.classificationNode) ||
    loose.some(
      (c) => attr(c, 'classificationNode') === S.classificationNode && attr(c, 'classifiedObject') === attr(p, 'id'),
    );
  const rp = packages.find(isSet) ?? (packages.length === 1 ? packages[0] : undefined);
  if (!rp) return {};
  const out: EbrimSubmissionSet = {};
  const uniqueId = externalId(rp, S.uniqueId);
  if (uniqueId) out.uniqueId = uniqueId;
  const sourceId = externalId(rp, S.sourceId);
  if (sourceId) out.sourceId = sourceId;
  const patientId = externalId(rp, S.patientId);
  if (patientId) out.patientId = patientId;
  const submissionTime = slot(rp, 'submissionTime')[0];
  if (submissionTime) out.submissionTime = submissionTime;
  const author = classifications(rp, attr(rp, 'id') ?? '', S.author, loose)[0];
  if (author) {
    const person = slot(author, 'authorPerson')[0];
    if (person) out.authorPerson = person;
    const institutions = slot(author, 'authorInstitution');
    if (institutions.length) out.authorInstitution = institutions;
  }
  return out;
}

/** The values of the Slot called name (trimmed, empty ones dropped). */
function slot(o: Node | undefined, name: string): string[] {
  return values(nodes(o?.Slot).find((x) => attr(x, 'name') === name));
}

/** The values of a Slot (trimmed, empty ones dropped). */
function values(s: Node | undefined): string[] {
  const list = nodes(s?.ValueList)[0]?.Value;
  return (Array.isArray(list) ? list : []).map((v) => (typeof v === 'string' ? v.trim() : '')).filter((v) => v !== '');
}

function externalId(o: Node, scheme: string): string | undefined {
  return attr(
    nodes(o.ExternalIdentifier).find((x) => attr(x, 'identificationScheme') === scheme),
    'value',
  );
}

/** The object's Classifications in a scheme: nested in it, or standing alone and pointing at it. */
function classifications(o: Node, id: string, scheme: string, loose: Node[]): Node[] {
  const own = nodes(o.Classification).filter((c) => attr(c, 'classificationScheme') === scheme);
  return [
    ...own,
    ...loose.filter((c) => attr(c, 'classificationScheme') === scheme && attr(c, 'classifiedObject') === id),
  ];
}

/** rim:Name/rim:LocalizedString/@value. */
function localized(o: Node | undefined): string | undefined {
  return attr(nodes(nodes(o?.Name)[0]?.LocalizedString)[0], 'value');
}

/** A URI slot: one value, or a long URI split in `1|...`, `2|...` values (ITI TF-3 §4.2.3.2.24). */
function joinUri(values: string[]): string | undefined {
  if (values.length <= 1) return values[0];
  const parts = values.map((v) => /^(\d+)\|(.*)$/.exec(v));
  if (parts.some((p) => !p)) return values[0];
  return parts
    .sort((a, b) => Number(a![1]) - Number(b![1]))
    .map((p) => p![2])
    .join('');
}
