import { PfiError } from '../errors.js';

/** HL7 table 0357 (Message error condition codes), the codes the volets put in ERR-3. */
export type ErrorCode = 100 | 101 | 102 | 103 | 200 | 201 | 202 | 203 | 204 | 205 | 206 | 207;

export const ERROR_TEXT: Record<ErrorCode, string> = {
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  204: 'Unknown key identifier',
  205: 'Duplicate key identifier',
  206: 'Application record locked',
  207: 'Application internal error',
};

/** Error location, the ERL data type of ERR-2 (all positions 1-based). */
export interface ErrorLocation {
  segment: string;
  sequence?: number;
  field?: number;
  repetition?: number;
  component?: number;
  subcomponent?: number;
}

export class Hl7ParseError extends PfiError {
  constructor(
    message: string,
    readonly code: ErrorCode,
    readonly location?: ErrorLocation,
  ) {
    super('hl7-parse', message);
    this.name = 'Hl7ParseError';
  }
}
