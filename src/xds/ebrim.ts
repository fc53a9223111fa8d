/**
 * ebRIM 3.0 serialisation of the XDS metadata model (model.ts), as IHE XDS.b ITI-41 (Provide and Register
 * Document Set-b) and IHE XDM (METADATA.XML) carry it, following IHE ITI TF-3 §4.2/§4.3 and the ANS
 * (DMP) sample ITI-41 envelope.
 *
 * - Output is an XML fragment without declaration (to be embedded in a SOAP body, or written as
 *   METADATA.XML as is: UTF-8 is the default encoding of an undeclared document).
 * - Prefixes: rim, lcm, xds (declared on the root element).
 * - ids: the DocumentEntry / SubmissionSet `id` is their entryUUID, as given (an `urn:uuid:` or a
 *   symbolic id); Classifications, ExternalIdentifiers and Associations get symbolic ids (`cl1`,
 *   `ei1`, `as1`, ...) unique within the request, which the registry replaces by UUIDs.
 * - HL7 v2 typed values (XCN, XON, CX, CWE) are encoded with the standard delimiters `|^~\&`, their
 *   components HL7-escaped (`&` in a name becomes `\T\`); XML escaping comes on top of it.
 * - A required coded value (code, coding scheme, display name) that is missing raises a MetadataError
 *   naming the field: an XDS registry would reject the submission anyway.
 */
import { create } from 'xmlbuilder2';
import { escape as hl7Escape } from '../hl7v2/escape.js';
import { STANDARD_DELIMITERS } from '../hl7v2/message.js';
import {
  MetadataError,
  type DocumentEntry,
  type SubmissionSet,
  type XdsAuthor,
  type XdsCode,
  type XdsOrganization,
  type XdsPatientId,
  type XdsPerson,
} from './model.js';
import { builderText } from '../util/xml-text.js';

type XMLBuilder = ReturnType<typeof create>;

export const NS = {
  rim: 'urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0',
  lcm: 'urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0',
  xds: 'urn:ihe:iti:xds-b:2007',
  xop: 'http://www.w3.org/2004/08/xop/include',
  query: 'urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0',
} as const;

const XMLNS = 'http://www.w3.org/2000/xmlns/';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

/** IHE ITI TF-3 §4.2.5 UUIDs (checked against the ANS DMP ITI-41 sample). */
export const XDS_UUID = {
  documentEntry: {
    objectType: 'urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1',
    author: 'urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d',
    classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
    confidentialityCode: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
    eventCodeList: 'urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4',
    formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
    healthcareFacilityTypeCode: 'urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1',
    practiceSettingCode: 'urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead',
    typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
    patientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
    uniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
  },
  submissionSet: {
    classificationNode: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
    author: 'urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d',
    contentTypeCode: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
    uniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
    sourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
    patientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
  },
} as const;

export const STATUS_APPROVED = 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved';
export const ASSOCIATION_HAS_MEMBER = 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember';
export const ASSOCIATION_RPLC = 'urn:ihe:iti:2007:AssociationType:RPLC';
export const ASSOCIATION_UPDATE_STATUS = 'urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus';
/** JDV_J52-AvailabilityStatus-CISIS: the status a deletion (TD3.3c) gives a document. */
export const STATUS_DELETED = 'urn:asip:ci-sis:2010:StatusType:Deleted';
export const STATUS_DEPRECATED = 'urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated';
/** ITI-18 GetDocuments stored query. */
export const QUERY_GET_DOCUMENTS = 'urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4';
/** Slot name of XDSDocumentEntry.referenceIdList (ITI TF-3 §4.2.3.2.28). */
export const SLOT_REFERENCE_ID_LIST = 'urn:ihe:iti:xds:2013:referenceIdList';
/** ANS assigning authority of the national health professional identifiers (RPPS/ADELI-based IDNPS). */
export const OID_IDNPS = '1.2.250.1.71.4.2.1';

export interface EbrimOptions {
  /** RPLC: the first entry replaces this (already registered) DocumentEntry. */
  replaces?: { entryUUID: string };
  /** RPLC for several entries (an ORU's N1 and N3 each replace their own former version). */
  replacements?: { source: string; target: string }[];
  /**
   * XDM only: the `URI` slot of each DocumentEntry (its file name in the archive's SUBSET folder),
   * keyed by entryUUID. Not used by ITI-41.
   */
  documentUris?: Record<string, string>;
}

/** XCN person with the optional XCN-10 (name type) and XCN-13 (identifier type) the CI-SIS uses. */
export type XcnPerson = XdsPerson & { nameType?: string; idType?: string };

const hl7 = (s: string | undefined): string => (s ? hl7Escape(s, STANDARD_DELIMITERS) : '');

/**
 * XCN: `id^family^given^^^^^^&authority&ISO`. When the identifier is a national health professional
 * identifier (authority 1.2.250.1.71.4.2.1) the ANS form adds `^D^^^IDNPS` (XCN-10 name type D,
 * XCN-13 identifier type IDNPS), as in the DMP sample; `nameType` / `idType` override it.
 */
export function xcn(p: XcnPerson): string {
  const c: string[] = [hl7(p.id), hl7(p.family), hl7(p.given), '', '', '', '', '', ''];
  if (p.idAuthority) c[8] = `&${hl7(p.idAuthority)}&ISO`;
  const national = p.idAuthority === OID_IDNPS && !!p.id;
  const nameType = p.nameType ?? (national ? 'D' : undefined);
  const idType = p.idType ?? (national ? 'IDNPS' : undefined);
  if (nameType || idType) c.push(hl7(nameType), '', '', hl7(idType));
  return trimComponents(c);
}

/**
 * XON: `name^^^^^&authority&ISO^IDNST^^^id` (the identifier in XON-10, its assigning authority in
 * XON-6, identifier type IDNST). Without an authority, the identifier (then an OID) alone in XON-10;
 * without an identifier, the name alone.
 */
export function xon(o: XdsOrganization): string {
  const c: string[] = [hl7(o.name)];
  if (o.id) {
    c.push(
      '',
      '',
      '',
      '',
      o.idAuthority ? `&${hl7(o.idAuthority)}&ISO` : '',
      o.idAuthority ? 'IDNST' : '',
      '',
      '',
      hl7(o.id),
    );
  }
  return trimComponents(c);
}

/** CX: `id^^^&authority&ISO^type`, e.g. `279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH`. */
export function cx(id: XdsPatientId): string {
  if (!id.id || !id.authority) throw new MetadataError('patientId', 'identifier and assigning authority are required');
  return trimComponents([hl7(id.id), '', '', `&${hl7(id.authority)}&ISO`, hl7(id.type)]);
}

/** CWE for authorSpecialty: `code^display^codingScheme`. */
function cwe(c: XdsCode): string {
  return trimComponents([hl7(c.code), hl7(c.display), hl7(c.scheme)]);
}

function trimComponents(c: string[]): string {
  let n = c.length;
  while (n > 0 && c[n - 1] === '') n--;
  return c.slice(0, n).join('^');
}

/** Builds one request; holds the id counters. */
class Writer {
  #n = { cl: 0, ei: 0, as: 0 };

  constructor(readonly lang: string) {}

  id(kind: 'cl' | 'ei' | 'as'): string {
    return `${kind}${++this.#n[kind]}`;
  }

  slot(parent: XMLBuilder, name: string, values: (string | undefined)[]): void {
    const vs = values.filter((v): v is string => v !== undefined && v !== '');
    if (vs.length === 0) return;
    const list = parent.ele(NS.rim, 'rim:Slot').att('name', name).ele(NS.rim, 'rim:ValueList');
    for (const v of vs) list.ele(NS.rim, 'rim:Value').txt(builderText(v));
  }

  localized(parent: XMLBuilder, element: 'rim:Name' | 'rim:Description', value: string, lang = this.lang): void {
    parent
      .ele(NS.rim, element)
      .ele(NS.rim, 'rim:LocalizedString')
      .att('charset', 'UTF-8')
      .att(XML_NS, 'xml:lang', lang)
      .att('value', builderText(value));
  }

  code(parent: XMLBuilder, field: string, scheme: string, object: string, c: XdsCode | undefined): void {
    if (!c) throw new MetadataError(field, 'coded value is required');
    if (!c.code) throw new MetadataError(`${field}.code`, 'code is required');
    if (!c.scheme) throw new MetadataError(`${field}.scheme`, 'coding scheme is required');
    if (!c.display) throw new MetadataError(`${field}.display`, 'display name is required by ITI TF-3');
    const cl = parent
      .ele(NS.rim, 'rim:Classification')
      .att('classificationScheme', scheme)
      .att('classifiedObject', object)
      .att('id', this.id('cl'))
      .att('nodeRepresentation', builderText(c.code));
    this.slot(cl, 'codingScheme', [c.scheme]);
    this.localized(cl, 'rim:Name', c.display);
  }

  author(parent: XMLBuilder, scheme: string, object: string, a: XdsAuthor): void {
    const cl = parent
      .ele(NS.rim, 'rim:Classification')
      .att('classificationScheme', scheme)
      .att('classifiedObject', object)
      .att('id', this.id('cl'))
      .att('nodeRepresentation', '');
    this.slot(cl, 'authorPerson', [a.person ? xcn(a.person) : undefined]);
    this.slot(cl, 'authorInstitution', a.institutions.map(xon));
    this.slot(cl, 'authorRole', a.roles.map(hl7));
    this.slot(cl, 'authorSpecialty', a.specialties.map(cwe));
  }

  externalId(parent: XMLBuilder, scheme: string, object: string, value: string, name: string): void {
    const ei = parent
      .ele(NS.rim, 'rim:ExternalIdentifier')
      .att('id', this.id('ei'))
      .att('identificationScheme', scheme)
      .att('registryObject', object)
      .att('value', builderText(value));
    this.localized(ei, 'rim:Name', name);
  }

  association(parent: XMLBuilder, type: string, source: string, target: string, status?: string): void {
    const as = parent
      .ele(NS.rim, 'rim:Association')
      .att('associationType', type)
      .att('id', this.id('as'))
      .att('sourceObject', source)
      .att('targetObject', target);
    if (status) this.slot(as, 'SubmissionSetStatus', [status]);
  }

  submissionSet(list: XMLBuilder, set: SubmissionSet): void {
    required('SubmissionSet.entryUUID', set.entryUUID);
    required('SubmissionSet.uniqueId', set.uniqueId);
    required('SubmissionSet.sourceId', set.sourceId);
    required('SubmissionSet.submissionTime', set.submissionTime);
    const id = set.entryUUID;
    const rp = list.ele(NS.rim, 'rim:RegistryPackage').att('id', id);
    this.slot(rp, 'submissionTime', [set.submissionTime]);
    if (set.title) this.localized(rp, 'rim:Name', set.title);
    this.author(rp, XDS_UUID.submissionSet.author, id, set.author);
    this.code(rp, 'SubmissionSet.contentTypeCode', XDS_UUID.submissionSet.contentTypeCode, id, set.contentTypeCode);
    rp.ele(NS.rim, 'rim:Classification')
      .att('classificationNode', XDS_UUID.submissionSet.classificationNode)
      .att('classifiedObject', id)
      .att('id', this.id('cl'));
    this.externalId(rp, XDS_UUID.submissionSet.uniqueId, id, set.uniqueId, 'XDSSubmissionSet.uniqueId');
    this.externalId(rp, XDS_UUID.submissionSet.sourceId, id, set.sourceId, 'XDSSubmissionSet.sourceId');
    this.externalId(rp, XDS_UUID.submissionSet.patientId, id, cx(set.patientId), 'XDSSubmissionSet.patientId');
  }

  documentEntry(list: XMLBuilder, e: DocumentEntry, uri: string | undefined): void {
    required('DocumentEntry.entryUUID', e.entryUUID);
    required('DocumentEntry.uniqueId', e.uniqueId);
    required('DocumentEntry.mimeType', e.mimeType);
    required('DocumentEntry.creationTime', e.creationTime);
    required('DocumentEntry.languageCode', e.languageCode);
    const id = e.entryUUID;
    const D = XDS_UUID.documentEntry;
    const eo = list
      .ele(NS.rim, 'rim:ExtrinsicObject')
      .att('id', id)
      .att('mimeType', e.mimeType)
      .att('objectType', D.objectType)
      .att('status', STATUS_APPROVED);
    this.slot(eo, 'creationTime', [e.creationTime]);
    this.slot(eo, 'languageCode', [e.languageCode]);
    this.slot(eo, 'legalAuthenticator', [e.legalAuthenticator ? xcn(e.legalAuthenticator) : undefined]);
    this.slot(eo, 'serviceStartTime', [e.serviceStartTime]);
    this.slot(eo, 'serviceStopTime', [e.serviceStopTime]);
    this.slot(eo, 'sourcePatientId', [cx(e.sourcePatientId)]);
    this.slot(eo, 'sourcePatientInfo', e.sourcePatientInfo);
    this.slot(eo, 'hash', [e.hash]);
    this.slot(eo, 'size', [Number.isFinite(e.size) ? String(e.size) : undefined]);
    this.slot(eo, 'URI', [uri]);
    this.slot(eo, SLOT_REFERENCE_ID_LIST, e.referenceIds);
    this.localized(eo, 'rim:Name', e.title, e.languageCode);
    for (const a of e.authors) this.author(eo, D.author, id, a);
    this.code(eo, 'DocumentEntry.classCode', D.classCode, id, e.classCode);
    if (e.confidentialityCodes.length === 0) {
      throw new MetadataError('DocumentEntry.confidentialityCode', 'at least one confidentiality code is required');
    }
    e.confidentialityCodes.forEach((c, i) =>
      this.code(eo, `DocumentEntry.confidentialityCode[${i}]`, D.confidentialityCode, id, c),
    );
    e.eventCodes.forEach((c, i) => this.code(eo, `DocumentEntry.eventCodeList[${i}]`, D.eventCodeList, id, c));
    this.code(eo, 'DocumentEntry.formatCode', D.formatCode, id, e.formatCode);
    this.code(
      eo,
      'DocumentEntry.healthcareFacilityTypeCode',
      D.healthcareFacilityTypeCode,
      id,
      e.healthcareFacilityTypeCode,
    );
    this.code(eo, 'DocumentEntry.practiceSettingCode', D.practiceSettingCode, id, e.practiceSettingCode);
    this.code(eo, 'DocumentEntry.typeCode', D.typeCode, id, e.typeCode);
    this.externalId(eo, D.patientId, id, cx(e.patientId), 'XDSDocumentEntry.patientId');
    this.externalId(eo, D.uniqueId, id, e.uniqueId, 'XDSDocumentEntry.uniqueId');
  }

  /** The rim:RegistryObjectList content: SubmissionSet, entries, HasMember (+ RPLC) associations. */
  registryObjects(list: XMLBuilder, set: SubmissionSet, entries: DocumentEntry[], opts: EbrimOptions): void {
    if (entries.length === 0) throw new MetadataError('DocumentEntry', 'a submission needs at least one document');
    const ids = new Set<string>([set.entryUUID]);
    for (const e of entries) {
      if (ids.has(e.entryUUID)) throw new MetadataError('DocumentEntry.entryUUID', `duplicate id ${e.entryUUID}`);
      ids.add(e.entryUUID);
    }
    this.submissionSet(list, set);
    for (const e of entries) this.documentEntry(list, e, opts.documentUris?.[e.entryUUID]);
    for (const e of entries) this.association(list, ASSOCIATION_HAS_MEMBER, set.entryUUID, e.entryUUID, 'Original');
    if (opts.replaces) {
      required('replaces.entryUUID', opts.replaces.entryUUID);
      if (ids.has(opts.replaces.entryUUID)) {
        throw new MetadataError('replaces.entryUUID', 'the replaced entry cannot be part of this submission');
      }
      this.association(list, ASSOCIATION_RPLC, entries[0]!.entryUUID, opts.replaces.entryUUID);
    }
    for (const r of opts.replacements ?? []) {
      if (!ids.has(r.source))
        throw new MetadataError('replacements.source', `${r.source} is not an entry of this submission`);
      if (ids.has(r.target))
        throw new MetadataError('replacements.target', 'the replaced entry cannot be part of this submission');
      this.association(list, ASSOCIATION_RPLC, r.source, r.target);
    }
  }

  /** ITI-57: the SubmissionSet and one UpdateAvailabilityStatus association per target entry. */
  statusUpdates(
    list: XMLBuilder,
    set: SubmissionSet,
    targets: { entryUUID: string; from: string }[],
    to: string,
  ): void {
    if (targets.length === 0) throw new MetadataError('Association.targetObject', 'no document to update');
    this.submissionSet(list, set);
    for (const t of targets) {
      const as = list
        .ele(NS.rim, 'rim:Association')
        .att('associationType', ASSOCIATION_UPDATE_STATUS)
        .att('id', this.id('as'))
        .att('sourceObject', set.entryUUID)
        .att('targetObject', t.entryUUID);
      this.slot(as, 'OriginalStatus', [t.from]);
      this.slot(as, 'NewStatus', [to]);
    }
  }
}

function required(field: string, value: string | undefined): void {
  if (!value) throw new MetadataError(field, 'is required');
}

function declare(root: XMLBuilder, prefixes: (keyof typeof NS)[]): XMLBuilder {
  for (const p of prefixes) root.att(XMLNS, `xmlns:${p}`, NS[p]);
  return root;
}

function submitObjects(parent: XMLBuilder, set: SubmissionSet, entries: DocumentEntry[], opts: EbrimOptions): void {
  const lang = entries[0]?.languageCode || 'fr-FR';
  const list = parent.ele(NS.lcm, 'lcm:SubmitObjectsRequest').ele(NS.rim, 'rim:RegistryObjectList');
  new Writer(lang).registryObjects(list, set, entries, opts);
}

/** lcm:SubmitObjectsRequest with the RegistryObjectList (SubmissionSet, one or more DocumentEntries, associations). */
export function submitObjectsRequest(set: SubmissionSet, entries: DocumentEntry[], opts: EbrimOptions = {}): string {
  const doc = create();
  const lang = entries[0]?.languageCode || 'fr-FR';
  const root = declare(doc.ele(NS.lcm, 'lcm:SubmitObjectsRequest'), ['rim']);
  new Writer(lang).registryObjects(root.ele(NS.rim, 'rim:RegistryObjectList'), set, entries, opts);
  return doc.end({ headless: true, prettyPrint: true });
}

/**
 * xds:ProvideAndRegisterDocumentSetRequest: the SubmitObjectsRequest plus one xds:Document per entry,
 * its content an `xop:Include` (MTOM) pointing at the MIME part whose Content-ID the caller gives
 * (`cid:` is added when missing).
 */
export function provideAndRegisterRequest(
  set: SubmissionSet,
  entries: { entry: DocumentEntry; contentId: string }[],
  opts: EbrimOptions = {},
): string {
  const doc = create();
  const root = declare(doc.ele(NS.xds, 'xds:ProvideAndRegisterDocumentSetRequest'), ['lcm', 'rim']);
  submitObjects(
    root,
    set,
    entries.map((e) => e.entry),
    opts,
  );
  for (const { entry, contentId } of entries) {
    if (!contentId) throw new MetadataError('Document.contentId', `missing for ${entry.entryUUID}`);
    const href = contentId.startsWith('cid:') ? contentId : `cid:${contentId.replace(/^<|>$/g, '')}`;
    root
      .ele(NS.xds, 'xds:Document')
      .att('id', entry.entryUUID)
      .ele(NS.xop, 'xop:Include')
      .att(XMLNS, 'xmlns:xop', NS.xop)
      .att('href', href);
  }
  return doc.end({ headless: true, prettyPrint: true });
}

/** ITI-57 Update Document Set: change the availability status of registered entries (deletion: TD3.3c). */
export function updateDocumentSetRequest(
  set: SubmissionSet,
  targets: { entryUUID: string; from: string }[],
  to: string,
): string {
  const doc = create();
  const root = declare(doc.ele(NS.lcm, 'lcm:SubmitObjectsRequest'), ['rim']);
  new Writer('fr-FR').statusUpdates(root.ele(NS.rim, 'rim:RegistryObjectList'), set, targets, to);
  return doc.end({ headless: true, prettyPrint: true });
}

/** ITI-18 GetDocuments by uniqueId, LeafClass: finds the entryUUID and status of documents registered before. */
export function getDocumentsQuery(uniqueIds: string[]): string {
  const doc = create();
  const root = declare(doc.ele(NS.query, 'query:AdhocQueryRequest'), ['rim']);
  root.ele(NS.query, 'query:ResponseOption').att('returnComposedObjects', 'true').att('returnType', 'LeafClass');
  const q = root.ele(NS.rim, 'rim:AdhocQuery').att('id', QUERY_GET_DOCUMENTS);
  const quoted = `(${uniqueIds.map((u) => `'${u.replace(/'/g, "''")}'`).join(',')})`;
  q.ele(NS.rim, 'rim:Slot')
    .att('name', '$XDSDocumentEntryUniqueId')
    .ele(NS.rim, 'rim:ValueList')
    .ele(NS.rim, 'rim:Value')
    .txt(quoted);
  return doc.end({ headless: true, prettyPrint: true });
}
