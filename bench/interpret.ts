/**
 * "interpret": how many transmission requests per second the flow turns into submissions (CDA
 * header read, volet checks, XDS metadata, routes), in this process, without I/O: the CPU cost a
 * worker pays per request.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildN1 } from '../src/cda/n1.js';
import { splitMessages } from '../src/cli/split.js';
import { interpret } from '../src/flows/transmission/interpret.js';
import { loadTransmissionMapping } from '../src/flows/transmission/mapping.js';
import { validateTransmission } from '../src/flows/transmission/validate.js';
import { Hl7Message } from '../src/hl7v2/message.js';
import { packageRoot } from '../src/util/paths.js';
import { Terminology } from '../src/xds/terminology.js';

/**
 * The demo request with a CDA N1 whose PDF makes the message about `bytes` long; `n` makes the
 * document id and MSH-10 unique (a DMP refuses a uniqueId twice).
 */
export function request(bytes: number, n?: number): Buffer {
  const root = packageRoot();
  const msg = Hl7Message.parse(splitMessages(readFileSync(join(root, 'fixtures', 'mdm-t02-demo.hl7')))[0]!);
  if (n !== undefined) {
    msg.set('TXA-12.1', `${msg.get('TXA-12.1')}.${n}`);
    msg.set('MSH-10', `BENCH-DMP-${n}`);
  }
  // Filler that does not compress, sized so that the message is about `bytes`: the PDF is base64
  // inside the CDA, and the CDA base64 again inside OBX-5 (4/3 twice).
  const filler = Buffer.alloc(Math.floor((bytes * 9) / 16) - 2048);
  for (let i = 0; i < filler.length; i++) filler[i] = (i * 2654435761) >>> 24;
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n', 'latin1'), filler, Buffer.from('\n%%EOF\n', 'latin1')]);
  const insRep = msg.get('PID-3[1].1')!;
  const cda = buildN1({
    document: {
      id: { root: msg.get('TXA-12.1')! },
      code: { code: '11488-4', codeSystem: '2.16.840.1.113883.6.1', displayName: 'Compte rendu de consultation' },
      title: 'Compte rendu de consultation',
      effectiveTime: '20261121100000+0100',
    },
    patient: {
      ins: { matricule: insRep, oid: '1.2.250.1.213.1.4.10' },
      localIds: [{ root: '1.2.250.1.999.9.1', extension: 'DEMO0001' }],
      birthName: 'DEMO',
      givenNames: ['CAMILLE'],
      sex: 'F',
      birthDate: '19800101',
    },
    author: {
      time: '20261121100000+0100',
      id: { root: '1.2.250.1.71.4.2.1', extension: '899999999999' },
      family: 'DEMO',
      given: 'ALEX',
      organization: { id: { root: '1.2.250.1.71.4.2.2', extension: '1999999999' }, name: 'CH-DEMO' },
    },
    custodian: { id: { root: '1.2.250.1.71.4.2.2', extension: '1999999999' }, name: 'CH-DEMO' },
    serviceEvent: {
      start: '20261121093000+0100',
      performerOrganization: {
        id: { root: '1.2.250.1.71.4.2.2', extension: '1999999999' },
        name: 'CH-DEMO',
        practiceSetting: {
          code: 'ETABLISSEMENT',
          codeSystem: '1.2.250.1.213.1.1.4.9',
          displayName: 'Etablissement de santé',
        },
      },
    },
    encounter: {
      start: '20261121093000+0100',
      healthCareFacility: {
        code: 'SA01',
        codeSystem: '1.2.250.1.71.4.2.4',
        displayName: 'Etablissement Public de santé',
      },
    },
    pdf,
  });
  msg.set('OBX-5.5', cda.toString('base64'));
  return msg.toBuffer();
}

export function benchInterpret(targetBytes: number, seconds: number): Record<string, unknown> {
  const root = packageRoot();
  const terminology = Terminology.load(join(root, 'mappings', 'terminology.json'));
  const mapping = loadTransmissionMapping(join(root, 'mappings', 'transmission.yaml'));
  const raw = request(targetBytes);
  const once = () => {
    const msg = Hl7Message.parse(raw);
    if (validateTransmission(msg).length) throw new Error('bench request breaks the volet');
    return interpret(msg, { terminology, mapping });
  };
  once();
  const until = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < until) {
    once();
    n++;
  }
  const elapsed = (performance.now() - t0) / 1000;
  return {
    bench: 'interpret',
    messageBytes: raw.length,
    submissions: n,
    seconds: Math.round(elapsed * 100) / 100,
    submissionsPerSec: Math.round((n / elapsed) * 10) / 10,
    msPerSubmission: Math.round((elapsed / n) * 1e5) / 100,
  };
}
