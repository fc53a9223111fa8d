/**
 * What the engine understood of a transmission request, kept in the journal (`submission`) and read by
 * the deliveries: the documents with their XDS metadata, the MetaDMPMSS flags, the routes.
 */
import type { DocumentEntry, SubmissionSet } from '../xds/model.js';

/** MetaDMPMSS Y/N flags; absent = not sent. */
export interface TransmissionFlags {
  DESTDMP?: boolean;
  DESTMSSANTEPS?: boolean;
  DESTMSSANTEPAT?: boolean;
  ACK_RECEPTION?: boolean;
  ACK_LECTURE_MSS?: boolean;
  MASQUE_PS?: boolean;
  INVISIBLE_PATIENT?: boolean;
  INVISIBLE_REP_LEGAUX?: boolean;
  CONNEXION_SECRETE?: boolean;
  MODIF_CONF_CODE?: boolean;
}

/** Where each request must go, as its MetaDMPMSS flags and PRT segments say. */
export interface Routes {
  dmp: boolean;
  /** MSSanté to professionals (PRT RCT other than the patient's address). */
  mssantePS?: { recipients: string[]; replyTo?: string; body?: string };
  /** MSSanté to the patient; `noReply`: NTE-4 asked for the header X-MSS-MES: FIN. */
  mssantePatient?: { address: string; body?: string; noReply: boolean };
  acks: { reception: boolean; reading: boolean };
}

/** What the engine understood of a transmission request: the documents, their metadata, the routes. */
export interface Submission {
  event: 'new' | 'replace' | 'delete';
  /** TXA-13.1 of a replacement or a deletion's target (MDM). */
  replaces?: string;
  /**
   * `generatedCda`: the CDA N1 the engine built around a PDF (base64), the document to deliver;
   * `replaces`: the uniqueId of the version it replaces (CDA relatedDocument RPLC).
   */
  documents: { obx: number; mediaType: string; entry: DocumentEntry; generatedCda?: string; replaces?: string }[];
  submissionSet: SubmissionSet;
  flags: TransmissionFlags;
  routes: Routes;
  /** The patient as the identity store knows it (PAM feed), filled in by the flow. */
  patient?: { storeId?: string; qualified: boolean; dmpAllowed: boolean; reason?: string; insMatches?: boolean };
}
