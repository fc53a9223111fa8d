/**
 * What must hold before the engine calls the DMP for a request (docs/dmp-notes.md §5). A refusal is
 * the engine's, not the DMP's: journaled, counted, and told to the CREATEUR by ZAM^Z01 N with a
 * PFIERRORCODE; the request's MSSanté routes are not affected.
 */
import type { DocumentEntry } from '../xds/model.js';
import type { Terminology } from '../xds/terminology.js';
import { isInsOid } from '../identity/ins.js';

export interface GateInput {
  /** PID-32 repetitions: the first is the identity status (PROV, VALI, RECUP, QUAL). */
  reliability: string[];
  /** The identity store's word on DMP feeding (PAM ZFA-9): opposed only when known to be IO. */
  opposed: boolean;
  documents: DocumentEntry[];
}

export interface GateRefusal {
  rule: string;
  text: string;
}

export function dmpGate(input: GateInput, terminology: Terminology): GateRefusal | undefined {
  for (const d of input.documents) {
    if (d.patientId.type !== 'NH' || !isInsOid(d.patientId.authority)) {
      return { rule: 'DMP-INS-required', text: 'the DMP is fed only with the patient’s INS, and PID-3 has none' };
    }
  }
  if (!input.reliability.includes('QUAL')) {
    const status = input.reliability[0] || 'absent';
    return {
      rule: 'DMP-INS-qualified',
      text: `the identity is not qualified (PID-32 ${status}): the DMP needs a qualified INS (QUAL)`,
    };
  }
  if (input.opposed)
    return { rule: 'DMP-patient-opposed', text: 'the patient is informed and opposed to DMP feeding (PAM ZFA-9 = IO)' };
  for (const d of input.documents) {
    if (!terminology.inValueSet('J66', d.typeCode.code, d.typeCode.scheme)) {
      return {
        rule: 'DMP-typeCode-J66',
        text: `document type ${d.typeCode.code} is not in JDV_J66-TypeCode-DMP: the DMP does not take it`,
      };
    }
    if (!d.serviceStartTime)
      return {
        rule: 'DMP-serviceStartTime',
        text: 'the CDA has no documentationOf/serviceEvent/effectiveTime/low, which the DMP requires',
      };
  }
  return undefined;
}
