import { PfiError } from '../errors.js';
/**
 * IHE XDS.b metadata as the DMP and the XDM archives of MSSanté carry them, named after the volet's
 * mapping table (mapping.md of "Transmission de document(s) CDA en HL7v2"). Pure data: building it
 * from a message and its CDA is the transmission flow's job; ebrim.ts turns it into ebRIM 3.0 XML.
 */

/** A coded value: ebRIM Classification (code, codingScheme OID, display name). */
export interface XdsCode {
  code: string;
  /** OID of the code system (ebRIM "codingScheme"). */
  scheme: string;
  display?: string;
}

/** XCN: an author or legal authenticator, `id^family^given^^^^^^&assigningAuthority&ISO`. */
export interface XdsPerson {
  id?: string;
  idAuthority?: string;
  family?: string;
  given?: string;
}

/** XON: an organisation, `name^^^^^&authority&ISO^IDNST^^^id`. */
export interface XdsOrganization {
  name?: string;
  id?: string;
  idAuthority?: string;
}

export interface XdsAuthor {
  person?: XdsPerson;
  institutions: XdsOrganization[];
  roles: string[];
  specialties: XdsCode[];
}

/** Patient identifier in CX form, e.g. `279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH` for an INS. */
export interface XdsPatientId {
  id: string;
  authority: string;
  /** CX-5: NH for the INS, PI for a local IPP. */
  type: 'NH' | 'PI' | string;
}

export interface DocumentEntry {
  entryUUID: string;
  uniqueId: string;
  mimeType: 'text/xml' | 'application/xslt+xml' | string;
  title: string;
  typeCode: XdsCode;
  classCode: XdsCode;
  formatCode: XdsCode;
  confidentialityCodes: XdsCode[];
  healthcareFacilityTypeCode: XdsCode;
  practiceSettingCode: XdsCode;
  languageCode: string;
  /** UTC, YYYYMMDDHHMMSS (XDS DTM). */
  creationTime: string;
  serviceStartTime?: string;
  serviceStopTime?: string;
  patientId: XdsPatientId;
  sourcePatientId: XdsPatientId;
  /** PID-3/5/7/8 style lines, e.g. `PID-5|PAT-TROIS^DOMINIQUE^^^^^L`. */
  sourcePatientInfo: string[];
  authors: XdsAuthor[];
  legalAuthenticator?: XdsPerson;
  eventCodes: XdsCode[];
  referenceIds: string[];
  /** SHA-1, lowercase hex. */
  hash: string;
  size: number;
}

export interface SubmissionSet {
  entryUUID: string;
  uniqueId: string;
  sourceId: string;
  submissionTime: string;
  contentTypeCode: XdsCode;
  patientId: XdsPatientId;
  author: XdsAuthor;
  title?: string;
}

/** A required metadata that could not be filled: always named, never left silently empty. */
export class MetadataError extends PfiError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('xds-metadata', `${field}: ${message}`);
  }
}
