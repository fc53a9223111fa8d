/**
 * Business acknowledgements of the volet Transmission (table AckMetierZAM): the GESTIONNAIRE tells the
 * CREATEUR what became of a request. ZAM^Z01 DMP receipt, ZAM^Z02 MSSanté delivery, ZAM^Z03 MSSanté
 * reading; message structure ZAM_Z01, HL7 v2.6: MSH EVN OBX{1,2} [ERR].
 */
import { hl7Timestamp } from './ack.js';
import { writeMsh, type MshHeader } from './header.js';
import { escape } from './escape.js';
import { STANDARD_DELIMITERS } from './message.js';

export type ZamKind = 'Z01' | 'Z02' | 'Z03';

const FIRST: Record<ZamKind, [string, string]> = {
  Z01: ['ACK_RECEPTION_DMP', 'Accusé de réception DMP'],
  Z02: ['ACK_RECEPTION_MSS', 'Accusé de réception MSSanté'],
  Z03: ['ACK_LECTURE_MSS', 'Accusé de lecture'],
};
const SECOND: Partial<Record<ZamKind, [string, string]>> = {
  Z02: ['DESTINATAIRE_MSS', 'Destinataire MSSanté'],
  Z03: ['LECTEUR_MSS', 'Lecteur du courriel MSSanté'],
};

export interface ZamOptions {
  kind: ZamKind;
  /** MSH of the request being answered: the ZAM goes back to its sender, OBX-4 names its MSH-10. */
  original: MshHeader;
  /** MSH-10 of the ZAM itself. */
  controlId: string;
  ok: boolean;
  now?: Date;
  /** Z02 / Z03: the recipient or reader (OBX-4 its identifier, OBX-5.4 its address). */
  party?: { id?: string; address: string };
  /** When not ok: ERR-3 (table 0357, 207 by default), ERR-5 the service's own code, ERR-8 free text. */
  error?: { hl7Code?: number; hl7Label?: string; code: string; label: string; system: string; text?: string };
}

/** ER7 text of a ZAM, segments ended by \r. Values escaped with the standard delimiters. */
export function buildZam(o: ZamOptions): string {
  const e = (v: string | undefined) => escape(v ?? '', STANDARD_DELIMITERS);
  const m = o.original;
  const ts = hl7Timestamp(o.now ?? new Date());
  const segs = [
    writeMsh({
      sendingApplication: m.receivingApplication,
      sendingFacility: m.receivingFacility,
      receivingApplication: m.sendingApplication,
      receivingFacility: m.sendingFacility,
      time: ts,
      messageType: `ZAM^${o.kind}^ZAM_Z01`,
      controlId: e(o.controlId),
      processingId: m.processingId,
      charset: m.charsetRaw,
      profile: '2.1^CISIS_CDA_HL7_V2',
    }),
    `EVN||${ts}`,
  ];
  const [code, label] = FIRST[o.kind];
  segs.push(
    `OBX|1|CWE|${code}^${e(label)}^AckMetierZAM|${e(m.controlId)}|${o.ok ? 'Y' : 'N'}^^expandedYes-NoIndicator||||||F|`,
  );
  const second = SECOND[o.kind];
  if (second && o.party)
    segs.push(
      `OBX|2|XTN|${second[0]}^${e(second[1])}^AckMetierZAM|${e(o.party.id)}|^^X.400^${e(o.party.address)}||||||F|`,
    );
  if (!o.ok && o.error) {
    const er = o.error;
    const condition = `${er.hl7Code ?? 207}^${e(er.hl7Label ?? 'Application internal error')}^messageErrorCondition`;
    const err = `ERR|||${condition}|E|${e(er.code)}^${e(er.label)}^${e(er.system)}`;
    segs.push(er.text ? `${err}|||${e(er.text)}` : err);
  }
  return segs.join('\r') + '\r';
}
