/**
 * The participants of a transmission request (volet "Transmission de document(s) CDA en HL7v2"): the
 * PRT segments of the document's OBX group, by their role in PRT-4.1 — SB the sender, RCT a recipient,
 * REPLY the address answers go to. One reading used by the checks, the interpretation and the
 * deliveries, so that a role or a field means the same everywhere.
 */
import type { Hl7Message, Hl7Segment } from '../hl7v2/message.js';

/** Mon espace santé: a patient's MSSanté address is `<INS>@patient.mssante.fr`. */
export const PATIENT_DOMAIN = '@patient.mssante.fr';

export const isPatientAddress = (address: string): boolean => address.toLowerCase().endsWith(PATIENT_DOMAIN);

/** The patient's MSSanté address made from the INS, when the request names none. */
export const patientAddressOf = (ins: string): string => `${ins}${PATIENT_DOMAIN}`;

export interface Participant {
  /** Position among the message's PRT segments, from 1 (`PRT[n]`). */
  n: number;
  segment: Hl7Segment;
  /** PRT-4.1: SB, RCT, REPLY (empty when absent). */
  role: string;
  /** PRT-15.4, the MSSanté address, trimmed (absent when empty). */
  address?: string;
  /** A decoded field of this PRT, e.g. `5.1`, `8.10`; trimmed, undefined when empty. */
  field(path: string): string | undefined;
}

export function participants(msg: Hl7Message): Participant[] {
  return msg.segmentsNamed('PRT').map((segment, i) => {
    const n = i + 1;
    const field = (path: string) => msg.get(`PRT[${n}]-${path}`)?.trim() || undefined;
    const p: Participant = { n, segment, role: field('4.1') ?? '', field };
    const address = field('15.4');
    if (address) p.address = address;
    return p;
  });
}

/** The sender (PRT-4 = SB); the volet allows one. */
export function sender(msg: Hl7Message): Participant | undefined {
  return participants(msg).find((p) => p.role === 'SB');
}

/** The recipients with an address (PRT-4 = RCT), professionals and patient alike, in order. */
export function recipients(msg: Hl7Message): Participant[] {
  return participants(msg).filter((p) => p.role === 'RCT' && p.address);
}

/** The address answers go to (PRT-4 = REPLY). */
export function replyTo(msg: Hl7Message): string | undefined {
  return participants(msg).find((p) => p.role === 'REPLY' && p.address)?.address;
}

/** The patient's address: a recipient at @patient.mssante.fr, else the one made from the INS. */
export function patientAddress(msg: Hl7Message, ins: string | undefined): string | undefined {
  return (
    recipients(msg).find((p) => isPatientAddress(p.address!))?.address ?? (ins ? patientAddressOf(ins) : undefined)
  );
}

/** The recipient with that address (case-insensitive), e.g. for its PRT-5.1 in a ZAM. */
export function recipientAt(msg: Hl7Message, address: string): Participant | undefined {
  const lower = address.toLowerCase();
  return recipients(msg).find((p) => p.address!.toLowerCase() === lower);
}

/** A field of the sender's PRT, e.g. `5.1`; undefined when there is no sender or the field is empty. */
export function senderField(msg: Hl7Message): (path: string) => string | undefined {
  return sender(msg)?.field ?? (() => undefined);
}
