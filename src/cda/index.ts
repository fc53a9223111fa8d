export {
  DocumentError,
  extractDocuments,
  META_DMP_MSS,
  type DocumentLocation,
  type ExtractedDocument,
} from './extract.js';
export {
  CDA_NS,
  CdaError,
  readCdaHeader,
  type CdaAuthor,
  type CdaErrorKind,
  type CdaHeader,
  type Code,
  type InstanceId,
  type Organization,
} from './header.js';
export { buildN1, N1Error, N1_TEMPLATE_IDS, type N1Input } from './n1.js';
