/**
 * The catalogue of the engine's failures: for each kind of error, whether retrying can help and how it
 * reaches the people concerned. A permanent failure (the input itself is the problem) is refused or
 * dead-lettered at once, with its rule; a transient one (a peer away, a timeout, a busy service) is
 * retried with backoff, then dead-lettered. Workers decide with `isPermanent`; docs/errors.md is the
 * same table for operators.
 */
export type ErrorKind = 'permanent' | 'transient';

interface Entry {
  kind: ErrorKind;
  /** What the sender, the CREATEUR or the operator sees. */
  answer: string;
}

export const CATALOGUE = {
  'hl7-parse': { kind: 'permanent', answer: 'ACK AR/AE with ERR-3 from HL7 table 0357 (100-207)' },
  pam: { kind: 'permanent', answer: 'journal: dead letter with the PAM rule (ACK already AA)' },
  request: { kind: 'permanent', answer: 'dead letter `[rule] code`, ZAM^Z01 N with ERR when ACK_RECEPTION=Y' },
  cda: { kind: 'permanent', answer: 'dead letter (or the request refused: ZAM^Z01 N), the CDA rule named' },
  document: { kind: 'permanent', answer: 'the request refused: OBX-5 named, ZAM^Z01 N' },
  n1: { kind: 'permanent', answer: 'the request refused: the PDF cannot become a CDA N1, the field named' },
  'xds-metadata': { kind: 'permanent', answer: 'the request refused: the XDS field named' },
  'mssante-request': { kind: 'permanent', answer: 'MSSanté route refused once, ZAM^Z02 N (PFIERRORCODE)' },
  'dmp-refusal': { kind: 'permanent', answer: 'DMP route refused, ZAM^Z01 N (DMP_ERROR_CODE or PFIERRORCODE)' },
  xml: { kind: 'permanent', answer: 'the document or answer named as not well-formed XML (line, column)' },
  mime: { kind: 'permanent', answer: 'Flow B: dead letter `[MAIL-mime]`; a report mail set aside' },
  xdm: { kind: 'permanent', answer: 'Flow B: dead letter `[XDM-<reason>]`, the sender told (MDN 906)' },
  report: { kind: 'permanent', answer: 'the report mail set aside (asideFolder) and journaled' },
  config: { kind: 'permanent', answer: '`file:line:col: problem` on `pfi validate` / `pfi start`, which stops' },
  permanent: { kind: 'permanent', answer: 'dead letter at once with the message given' },
  'mllp-peer': { kind: 'transient', answer: 'retried with backoff, then dead letter (a DPI or CREATEUR away)' },
  'dmp-transport': { kind: 'transient', answer: 'retried with backoff (asking ITI-18 first), then dead letter, ZAM N' },
  soap: { kind: 'transient', answer: 'an unreadable DMP answer: retried, then dead letter' },
} as const satisfies Record<string, Entry>;

export type Catalogued = keyof typeof CATALOGUE;

/** An engine error, placed in the catalogue. */
export class PfiError extends Error {
  constructor(
    readonly catalogued: Catalogued,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  get permanent(): boolean {
    return CATALOGUE[this.catalogued].kind === 'permanent';
  }
}

/** A failure that retrying cannot fix (the message itself is the problem): dead-letter at once. */
export class PermanentError extends PfiError {
  constructor(message: string, options?: ErrorOptions) {
    super('permanent', message, options);
  }
}

/** True when retrying cannot help: the caller refuses or dead-letters at once. */
export function isPermanent(e: unknown): boolean {
  return e instanceof PfiError && e.permanent;
}
