/**
 * MSH reader for the ingest hot path: touches only the MSH segment, whatever the size of the message.
 * HD and other composite fields are kept raw (e.g. 'App^1.2.3^ISO') so that ACKs echo them back unchanged;
 * the fields the engine routes on are decoded.
 */
import type { Hl7Message } from './message.js';

export interface MshHeader {
  fieldSep: string;
  encodingChars: string;
  /** MSH-3..6, raw */
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** MSH-7, raw */
  dateTime: string;
  /** MSH-9.1 */
  messageType: string;
  /** MSH-9.2 */
  triggerEvent: string;
  /** MSH-9.3 */
  messageStructure: string;
  /** MSH-10 */
  controlId: string;
  /** MSH-11, raw */
  processingId: string;
  /** MSH-12.1 */
  version: string;
  /** MSH-12, raw (e.g. '2.5^FRA^2.11') */
  versionRaw: string;
  /** MSH-17 */
  countryCode: string;
  /** MSH-18, raw */
  charsetRaw: string;
  /** MSH-19, raw */
  principalLanguage: string;
  /** MSH-21, raw (e.g. '2.1^CISIS_CDA_HL7_V2') */
  profileRaw: string;
}

export function readMsh(msg: Hl7Message): MshHeader {
  const raw = (path: string) => msg.getRaw(path) ?? '';
  const get = (path: string) => msg.get(path) ?? '';
  return {
    fieldSep: get('MSH-1'),
    encodingChars: get('MSH-2'),
    sendingApplication: raw('MSH-3'),
    sendingFacility: raw('MSH-4'),
    receivingApplication: raw('MSH-5'),
    receivingFacility: raw('MSH-6'),
    dateTime: raw('MSH-7'),
    messageType: get('MSH-9.1'),
    triggerEvent: get('MSH-9.2'),
    messageStructure: get('MSH-9.3'),
    controlId: get('MSH-10'),
    processingId: raw('MSH-11'),
    version: get('MSH-12.1'),
    versionRaw: raw('MSH-12'),
    countryCode: get('MSH-17'),
    charsetRaw: raw('MSH-18'),
    principalLanguage: raw('MSH-19'),
    profileRaw: raw('MSH-21'),
  };
}

/** The fields of an MSH the engine writes (raw: already escaped, or echoed back as received). */
export interface MshFields {
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** MSH-7, HL7 TS. */
  time: string;
  /** MSH-9, e.g. `ZAM^Z01^ZAM_Z01`. */
  messageType: string;
  controlId: string;
  processingId?: string;
  charset?: string;
  /** MSH-21, the conformance profile, e.g. `2.1^CISIS_CDA_HL7_V2`. */
  profile: string;
}

/** An MSH of the CI-SIS volets (HL7 v2.6, standard delimiters, MSH-17 FRA, MSH-18 UTF-8 unless told). */
export function writeMsh(f: MshFields): string {
  return [
    'MSH',
    '^~\\&',
    f.sendingApplication,
    f.sendingFacility,
    f.receivingApplication,
    f.receivingFacility,
    f.time,
    '',
    f.messageType,
    f.controlId,
    f.processingId || 'P',
    '2.6',
    '',
    '',
    '',
    '',
    'FRA',
    f.charset || 'UNICODE UTF-8',
    '',
    '',
    f.profile,
  ].join('|');
}
