export { charsetFromMsh18, decodeBytes, encodeString, sniffMsh18, type Hl7Charset } from './charset.js';
export { escape, unescape } from './escape.js';
export { ERROR_TEXT, Hl7ParseError, type ErrorCode, type ErrorLocation } from './errors.js';
export { Hl7Message, Hl7Segment, parsePath, STANDARD_DELIMITERS, type Delimiters, type Hl7Path } from './message.js';
export { readMsh, type MshHeader } from './header.js';
export {
  ackBytes,
  ackCharset,
  buildAck,
  readAck,
  type AckCode,
  type AckError,
  type AckOptions,
  type AckReading,
} from './ack.js';
