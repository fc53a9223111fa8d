/**
 * The CONSOMMATEUR (DPI) simulator of Flow B, over real MLLP/TCP: the ANS examples of the volet "Transmission au
 * LPS d'un document CDA provenant d'un courriel MSSanté" (V1.1: initial transmission, replacement, deletion), then
 * each refusal the volet's tables give (applicationErrorCode 900..905, messageErrorCondition), and the answer modes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { MllpClient, MllpClientError } from '../../src/mllp/client.js';
import { ConsommateurSimulator, type SimPatient } from '../../src/sim/consommateur.js';
import { packageRoot } from '../../src/util/paths.js';

const DIR = join(
  packageRoot(),
  '..',
  'shared',
  'reference',
  'ansforge',
  'hl7v2-exemples',
  'Vague 2',
  'Trans_LPS_CDA_MSSanté',
  'TRANSMISSION_LPS_DOC_CDA_COURRIEL_FROM_MSSANTE_V1.1',
);
const INIT = 'Transmission initiale MDM/message_MDM__LPS_MSS_CR_Radio_INIT_N1_Base64.er7';
const INIT_PLACEHOLDER = 'Transmission initiale MDM/message_MDM__LPS_MSS_CR_Radio_INIT_N1.er7';
const RPLC = 'Remplacement MDM/message_MDM__LPS_MSS_CR_Radio_RPLC_N1.er7';
const DEL = 'Suppression MDM/message_MDM__LPS_MSS_CR_Radio_DEL_N1.er7';
const CDA_V1 = 'Transmission initiale MDM/CR_Radio_CDAN1_v1.XML';
const CDA_V2 = 'Remplacement MDM/CR_Radio_CDAN1_v2.XML';
const V1_ID = '1.2.250.1.71.4.2.2.120456789.71024000081';
const V2_ID = '1.2.250.1.71.4.2.2.120456789.71024000082';
const CDA_INS = 'extension="279035121518989" root="1.2.250.1.213.1.4.10"';

/** The example's patient as the INS referential gives it (the example's PID and CDA recordTarget agree). */
const PAT_TROIS: SimPatient = {
  ins: { matricule: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
  birthName: 'PAT-TROIS',
  givenNames: 'DOMINIQUE',
  birthDate: '19790328',
  sex: 'F',
  birthPlaceCode: '63220',
};

const text = (file: string) => readFileSync(join(DIR, file), 'utf8').replace(/\r?\n/g, '\r');
const example = (file: string) => Buffer.from(text(file), 'utf8');
const cdaFile = (file: string) => readFileSync(join(DIR, file), 'utf8');

/** An example message, edited: `hl7` on the parsed message, `cda` on the XML of the CDA put in OBX-5 (base64). */
function variant(
  file: string,
  edit: { hl7?: (m: Hl7Message) => void; cda?: (xml: string) => string; cdaFile?: string; controlId?: string } = {},
): Buffer {
  const m = Hl7Message.parse(text(file));
  if (edit.cda || edit.cdaFile) {
    const xml = cdaFile(edit.cdaFile ?? (file === INIT || file === INIT_PLACEHOLDER ? CDA_V1 : CDA_V2));
    m.setRaw('OBX-5.5', Buffer.from(edit.cda ? edit.cda(xml) : xml, 'utf8').toString('base64'));
  }
  if (edit.controlId) m.set('MSH-10', edit.controlId);
  edit.hl7?.(m);
  return m.toBuffer();
}

/** A valid matricule under the NIR OIDs: 13 characters + 97 - (n mod 97). */
const withKey = (body13: string) => body13 + String(97 - Number(BigInt(body13) % 97n)).padStart(2, '0');

let sim: ConsommateurSimulator;
let client: MllpClient;

beforeEach(async () => {
  sim = await ConsommateurSimulator.start({ patients: [PAT_TROIS] });
  client = new MllpClient({ host: '127.0.0.1', port: sim.port, ackTimeoutMs: 10_000, reconnect: { maxAttempts: 1 } });
});
afterEach(async () => {
  await client.close();
  await sim.stop();
});

async function send(payload: Buffer, via = client): Promise<Hl7Message> {
  return Hl7Message.parse(await via.send(payload));
}

const errSegments = (ack: Hl7Message) =>
  ack
    .toString()
    .split('\r')
    .filter((s) => s.startsWith('ERR|'));

/**
 * An application refusal as the volet's ERR example writes it: AE, ERR-3 207 (messageErrorCondition), ERR-5 code
 * (applicationErrorCode).
 */
function expectApplicationError(ack: Hl7Message, code: string, label: string): string {
  expect(ack.get('MSA-1')).toBe('AE');
  expect(ack.get('ERR-3.1')).toBe('207');
  expect(ack.get('ERR-3.2')).toBe('Application error');
  expect(ack.get('ERR-3.3')).toBe('messageErrorCondition');
  expect(ack.get('ERR-4')).toBe('E');
  expect(ack.get('ERR-5.1')).toBe(code);
  expect(ack.get('ERR-5.2')).toBe(label);
  expect(ack.get('ERR-5.3')).toBe('applicationErrorCode');
  return ack.get('ERR-8') ?? '';
}

function expectTechnicalError(ack: Hl7Message, msa: 'AE' | 'AR', condition: string): string {
  expect(ack.get('MSA-1')).toBe(msa);
  expect(ack.get('ERR-3.1')).toBe(condition);
  expect(ack.get('ERR-3.3')).toBe('messageErrorCondition');
  expect(ack.get('ERR-5')).toBeFalsy(); // Note 2: "le champ ERR-5 ne sera pas renseigné"
  return ack.get('ERR-8') ?? '';
}

describe('the ANS examples (V1.1) with their patient in the base', () => {
  test('T02, then T10, then T04: AA each; the store shows current → replaced, then deleted', async () => {
    const a1 = await send(example(INIT));
    // The example's ack.er7: MSH|^~\&|RIS-Y|Organisation-Y|PFI-Y|...||ACK^T02^ACK|016|P|2.6|||||FRA|UNICODE UTF-8
    // / MSA|AA|015
    expect(a1.get('MSA-1')).toBe('AA');
    expect(a1.get('MSA-2')).toBe('015');
    expect(a1.getRaw('MSH-9')).toBe('ACK^T02^ACK');
    expect([a1.get('MSH-3'), a1.get('MSH-5'), a1.get('MSH-12'), a1.get('MSH-17'), a1.get('MSH-18')]).toEqual([
      'RIS-Y',
      'PFI-Y',
      '2.6',
      'FRA',
      'UNICODE UTF-8',
    ]);
    expect(errSegments(a1)).toEqual([]);
    let docs = sim.documents();
    expect(docs).toHaveLength(1);
    expect(docs[0]).toMatchObject({
      uniqueId: V1_ID,
      version: 1,
      patient: '279035121518989',
      status: 'current',
      controlId: '015',
      sender: 'thomas.eric@medecin.mssante.fr',
      recipient: 'dpi@hopitalA.mssante.fr',
    });
    expect(docs[0]!.replaces).toBeUndefined();
    // The CDA stored is the one of OBX-5 (the example's base64 differs from the file beside it by a telecom and CRLFs).
    expect(docs[0]!.cda.equals(Buffer.from(Hl7Message.parse(text(INIT)).get('OBX-5.5')!, 'base64'))).toBe(true);

    const a2 = await send(example(RPLC));
    expect([a2.get('MSA-1'), a2.get('MSA-2'), a2.getRaw('MSH-9')]).toEqual(['AA', '015', 'ACK^T10^ACK']);
    docs = sim.documents();
    expect(docs.map((d) => [d.uniqueId, d.status, d.version, d.replaces])).toEqual([
      [V1_ID, 'replaced', 1, undefined],
      [V2_ID, 'current', 2, V1_ID],
    ]);

    const a3 = await send(example(DEL));
    expect([a3.get('MSA-1'), a3.get('MSA-2'), a3.getRaw('MSH-9')]).toEqual(['AA', '015', 'ACK^T04^ACK']);
    expect(sim.documents().map((d) => [d.uniqueId, d.status])).toEqual([
      [V1_ID, 'replaced'],
      [V2_ID, 'deleted'],
    ]);
    // The three examples share MSH-10 015: different contents, three messages.
    expect(sim.received().map((r) => [r.controlId, r.event, r.ack, r.errors])).toEqual([
      ['015', 'T02', 'AA', []],
      ['015', 'T10', 'AA', []],
      ['015', 'T04', 'AA', []],
    ]);
  });

  test('a resend of the same message (same MSH-10, same bytes): AA again, integrated once', async () => {
    expect((await send(example(INIT))).get('MSA-1')).toBe('AA');
    const again = await send(example(INIT));
    expect(again.get('MSA-1')).toBe('AA');
    expect(errSegments(again)).toEqual([]);
    expect(sim.documents()).toHaveLength(1);
    expect(sim.received()).toHaveLength(2);
  });

  test('the same document under another MSH-10: AA, integrated once', async () => {
    await send(example(INIT));
    const ack = await send(variant(INIT, { controlId: 'OTHER-1' }));
    expect([ack.get('MSA-1'), ack.get('MSA-2')]).toEqual(['AA', 'OTHER-1']);
    expect(sim.documents()).toHaveLength(1);
  });

  test(
    'the non-Base64 variant carries a placeholder, not a CDA: ' + 'AE 102 at OBX-5; with the CDA file in OBX-5: AA',
    async () => {
      const bad = await send(example(INIT_PLACEHOLDER));
      expect(expectTechnicalError(bad, 'AE', '102')).toMatch(/CDA/);
      expect(bad.getRaw('ERR-2')).toBe('OBX^1^5^1^5');
      expect(sim.documents()).toEqual([]);
      const ok = await send(variant(INIT_PLACEHOLDER, { cdaFile: CDA_V1, controlId: 'INIT-FILLED' }));
      expect(ok.get('MSA-1')).toBe('AA');
      expect(sim.documents().map((d) => d.uniqueId)).toEqual([V1_ID]);
    },
  );
});

describe('900: version of the document', () => {
  test('T10 of a document the DPI never received', async () => {
    const ack = await send(example(RPLC));
    expect(
      expectApplicationError(
        ack,
        '900',
        "Version du document incorrecte lors d'une demande de remplacement/suppression",
      ),
    ).toMatch(/inconnu/);
    expect(ack.getRaw('ERR-2')).toBe('TXA^1^13');
    expect(sim.documents()).toEqual([]);
  });

  test('T10 whose versionNumber is not the next one', async () => {
    await send(example(INIT));
    const ack = await send(
      variant(RPLC, { cda: (x) => x.replace('<versionNumber value="2"/>', '<versionNumber value="3"/>') }),
    );
    expect(
      expectApplicationError(
        ack,
        '900',
        "Version du document incorrecte lors d'une demande de remplacement/suppression",
      ),
    ).toMatch(/versionNumber 3/);
    expect(sim.documents().map((d) => d.status)).toEqual(['current']);
  });

  test('T10 of a version already replaced', async () => {
    await send(example(INIT));
    await send(example(RPLC));
    const ack = await send(variant(RPLC, { controlId: 'RPLC-AGAIN' }));
    expect(
      expectApplicationError(
        ack,
        '900',
        "Version du document incorrecte lors d'une demande de remplacement/suppression",
      ),
    ).toMatch(/plus récente/);
  });

  test('T10 whose CDA relatedDocument and TXA-13 name different documents', async () => {
    await send(example(INIT));
    const ack = await send(
      variant(RPLC, {
        cda: (x) => x.replace(`<id root="${V1_ID}"></id>`, '<id root="1.2.250.1.71.4.2.2.120456789.99"></id>'),
      }),
    );
    expect(
      expectApplicationError(
        ack,
        '900',
        "Version du document incorrecte lors d'une demande de remplacement/suppression",
      ),
    ).toMatch(/RPLC/);
  });

  test('T04 of a version that is no longer the latest one', async () => {
    await send(example(INIT));
    await send(example(RPLC));
    const del = variant(DEL, {
      cdaFile: CDA_V1,
      hl7: (m) => {
        m.setRaw('TXA-12', `${V1_ID}^Organisation-Y`);
        m.setRaw('TXA-13', '');
      },
    });
    const ack = await send(del);
    expectApplicationError(ack, '900', "Version du document incorrecte lors d'une demande de remplacement/suppression");
    expect(ack.getRaw('ERR-2')).toBe('TXA^1^12');
    expect(sim.documents().map((d) => d.status)).toEqual(['replaced', 'current']);
  });

  test('T04 of a document the DPI never received', async () => {
    const ack = await send(example(DEL));
    expectApplicationError(ack, '900', "Version du document incorrecte lors d'une demande de remplacement/suppression");
  });
});

describe('901: replacement or deletion by another organisation than the author', () => {
  const otherSender = (m: Hl7Message) => {
    m.setRaw('PRT[1]-5', '809999999999^Autre^Medecin^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS');
    m.set('PRT[1]-15.4', 'autre.medecin@clinique-z.mssante.fr');
  };

  test('T10 written by another person of another organisation, sent by them', async () => {
    await send(example(INIT));
    const ack = await send(
      variant(RPLC, {
        cda: (x) =>
          x
            .replaceAll(
              '<id extension="801234564895" root="1.2.250.1.71.4.2.1"></id>',
              '<id extension="809999999999" root="1.2.250.1.71.4.2.1"></id>',
            )
            .replaceAll(
              '<id extension="1120456789" root="1.2.250.1.71.4.2.2"></id>',
              '<id extension="1990000001" root="1.2.250.1.71.4.2.2"></id>',
            ),
        hl7: otherSender,
      }),
    );
    expectApplicationError(ack, '901', 'Auteur non autorisé à remplacer ou supprimer un document');
    expect(sim.documents().map((d) => d.status)).toEqual(['current']);
  });

  test('T10 by the same organisation (another author, same representedOrganization): AA', async () => {
    await send(example(INIT));
    const ack = await send(
      variant(RPLC, {
        cda: (x) =>
          x.replaceAll(
            '<id extension="801234564895" root="1.2.250.1.71.4.2.1"></id>',
            '<id extension="809999999999" root="1.2.250.1.71.4.2.1"></id>',
          ),
        hl7: otherSender,
      }),
    );
    expect(ack.get('MSA-1')).toBe('AA');
  });

  test('T04 sent by someone else', async () => {
    await send(example(INIT));
    await send(example(RPLC));
    const ack = await send(variant(DEL, { hl7: otherSender }));
    expectApplicationError(ack, '901', 'Auteur non autorisé à remplacer ou supprimer un document');
    expect(ack.getRaw('ERR-2')).toBe('PRT^1^5');
    expect(sim.documents().map((d) => d.status)).toEqual(['replaced', 'current']);
  });
});

describe('902: patient unknown', () => {
  test('no patient with this INS: the volet example ERR', async () => {
    await sim.stop();
    await client.close();
    sim = await ConsommateurSimulator.start();
    client = new MllpClient({ host: '127.0.0.1', port: sim.port, reconnect: { maxAttempts: 1 } });
    const ack = await send(example(INIT));
    expectApplicationError(ack, '902', 'Identifiant patient inconnu');
    // Volet: ERR||PID^1^3|207^Application error^messageErrorCondition| E|902^Identifiant de patient
    // inconnu^applicationErrorCode
    expect(errSegments(ack)[0]).toMatch(
      /^ERR\|\|PID\^1\^3\|207\^Application error\^messageErrorCondition\|E\|902\^Identifiant patient inconnu\^applicationErrorCode/,
    );
    expect(ack.getRaw('MSH-9')).toBe('ACK^T02^ACK');
    expect(sim.documents()).toEqual([]);
    expect(sim.received()[0]).toMatchObject({ ack: 'AE', errors: ['902'], conditions: ['207'] });
  });

  test('the same matricule under another OID (NIR instead of NIR test) is another patient', async () => {
    await sim.stop();
    await client.close();
    sim = await ConsommateurSimulator.start({
      patients: [{ ...PAT_TROIS, ins: { ...PAT_TROIS.ins, oid: '1.2.250.1.213.1.4.8' } }],
    });
    client = new MllpClient({ host: '127.0.0.1', port: sim.port, reconnect: { maxAttempts: 1 } });
    expectApplicationError(await send(example(INIT)), '902', 'Identifiant patient inconnu');
    sim.addPatient(PAT_TROIS);
    expect((await send(example(INIT))).get('MSA-1')).toBe('AA');
  });
});

describe('903: no INS in the document', () => {
  test('recordTarget carries only a local identifier', async () => {
    const ack = await send(
      variant(INIT, { cda: (x) => x.replace(CDA_INS, 'extension="IPP-4567" root="1.2.250.1.71.4.2.7.999"') }),
    );
    expect(expectApplicationError(ack, '903', 'INS non présent dans le document')).toMatch(/recordTarget/);
    expect(ack.getRaw('ERR-2')).toBe('OBX^1^5');
  });
});

describe('904: INS or traits do not match exactly', () => {
  const LABEL = "L'INS transmis ne correspond pas exactement à celui stocké dans la base du consommateur";
  const withBase = async (p: SimPatient) => {
    sim.addPatient(p); // same INS: replaces PAT_TROIS
  };

  test('birth name (the base differs)', async () => {
    await withBase({ ...PAT_TROIS, birthName: 'PAT-TROISIEME' });
    const ack = await send(example(INIT));
    const t = expectApplicationError(ack, '904', LABEL);
    expect(t).toMatch(/nom de naissance/);
    expect(t).not.toMatch(/PAT-TROIS/);
    expect(ack.getRaw('ERR-2')).toBe('PID^1^5^1^1');
    expect(sim.received()[0]!.errors).toEqual(['904']);
    expect(sim.documents()).toEqual([]);
  });

  test('given names: the whole list (the document lists two)', async () => {
    const ack = await send(
      variant(INIT, { cda: (x) => x.replace('<given>DOMINIQUE</given>', '<given>DOMINIQUE MARIE</given>') }),
    );
    const t = expectApplicationError(ack, '904', LABEL);
    expect(t).toMatch(/prénoms/);
    expect(t).not.toMatch(/DOMINIQUE|MARIE/);
    expect(t).toMatch(/document CDA et PID-5/);
    expect(sim.received()[0]!.errors).toEqual(['904']);
  });

  test('birth date (PID-7 differs)', async () => {
    const ack = await send(variant(INIT, { hl7: (m) => m.set('PID-7', '19790329') }));
    const t = expectApplicationError(ack, '904', LABEL);
    expect(t).toMatch(/date de naissance/);
    expect(t).not.toMatch(/1979/);
    expect(ack.getRaw('ERR-2')).toBe('PID^1^7');
  });

  test('sex (PID-8 differs)', async () => {
    const ack = await send(variant(INIT, { hl7: (m) => m.set('PID-8', 'M') }));
    expect(expectApplicationError(ack, '904', LABEL)).toMatch(/sexe/);
    expect(ack.getRaw('ERR-2')).toBe('PID^1^8');
  });

  test('birthplace (the base says born abroad)', async () => {
    await withBase({ ...PAT_TROIS, birthPlaceCode: '99999' });
    const ack = await send(example(INIT));
    const t = expectApplicationError(ack, '904', LABEL);
    expect(t).toMatch(/lieu de naissance/);
    expect(t).not.toMatch(/63220|99999/);
    expect(ack.getRaw('ERR-2')).toBe('PID^1^11^2^9');
  });

  test('INS matricule (PID-3 carries another valid INS)', async () => {
    const other = withKey('2790351215180');
    const ack = await send(variant(INIT, { hl7: (m) => m.set('PID-3.1', other) }));
    const t = expectApplicationError(ack, '904', LABEL);
    expect(t).toMatch(/matricule INS/);
    expect(t).not.toContain(other);
  });
});

describe('905: INS incomplete', () => {
  const LABEL = "L'INS transmis n'est pas complet";

  test('the document has the INS OID without a matricule', async () => {
    const ack = await send(variant(INIT, { cda: (x) => x.replace(CDA_INS, 'root="1.2.250.1.213.1.4.10"') }));
    expect(expectApplicationError(ack, '905', LABEL)).toMatch(/sans matricule/);
  });

  test('the document has a malformed matricule (wrong key)', async () => {
    const ack = await send(
      variant(INIT, { cda: (x) => x.replace(CDA_INS, 'extension="279035121518988" root="1.2.250.1.213.1.4.10"') }),
    );
    expect(expectApplicationError(ack, '905', LABEL)).toMatch(/mal formé/);
  });

  test('the document lacks a trait of the INS (birthplace)', async () => {
    const ack = await send(variant(INIT, { cda: (x) => x.replace(/<birthplace>[\s\S]*?<\/birthplace>/, '') }));
    expect(expectApplicationError(ack, '905', LABEL)).toMatch(/birthplace/);
  });

  test('PID-3 carries the matricule without its OID', async () => {
    const ack = await send(
      variant(INIT, { hl7: (m) => m.setRaw('PID-3', '279035121518989^^^ASIP-SANTE-INS-NIR^INS^^20101207') }),
    );
    expect(expectApplicationError(ack, '905', LABEL)).toMatch(/sans l'OID/);
    expect(ack.getRaw('ERR-2')).toBe('PID^1^3^1^4^2');
  });

  test('PID-3 carries the INS under an OID that is not an INS OID', async () => {
    const ack = await send(
      variant(INIT, { hl7: (m) => m.setRaw('PID-3', '279035121518989^^^X&1.2.250.1.999&ISO^INS') }),
    );
    expectApplicationError(ack, '905', LABEL);
  });
});

describe('technical refusals (table 0357)', () => {
  const ORU = Buffer.from(
    'MSH|^~\\&|PFI-Y|Organisation-Y|RIS-Y|Organisation-Y|20240101120000||ORU^R01^ORU_R01|ORU-1|' +
      'P|2.6|||||FRA|UNICODE UTF-8\r' +
      'PID|||279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L\r',
  );

  test('an ORU: AR 200', async () => {
    const ack = await send(ORU);
    expect(expectTechnicalError(ack, 'AR', '200')).toMatch(/ORU/);
    expect(ack.get('ERR-3.2')).toBe('Unsupported message type');
    expect(sim.received()[0]).toMatchObject({ event: 'R01', ack: 'AR', errors: [], conditions: ['200'] });
  });

  test('an unknown event (MDM^T01): AR 201', async () => {
    const ack = await send(variant(INIT, { hl7: (m) => m.setRaw('MSH-9', 'MDM^T01^MDM_T01') }));
    expectTechnicalError(ack, 'AR', '201');
    expect(ack.getRaw('MSH-9')).toBe('ACK^T01^ACK');
  });

  test('HL7 v2.5: AE 203 at MSH^1^12 (the volet example)', async () => {
    const ack = await send(variant(INIT, { hl7: (m) => m.set('MSH-12', '2.5') }));
    expectTechnicalError(ack, 'AE', '203');
    expect(ack.getRaw('ERR-2')).toBe('MSH^1^12');
  });

  test('MSH-21 missing: AE 101; another profile: AE 103', async () => {
    expectTechnicalError(await send(variant(INIT, { hl7: (m) => m.setRaw('MSH-21', '') })), 'AE', '101');
    expectTechnicalError(
      await send(variant(INIT, { hl7: (m) => m.setRaw('MSH-21', '2.1^CISIS_CDA_HL7_V2'), controlId: 'P2' })),
      'AE',
      '103',
    );
  });

  test('PV1 missing: AE 100', async () => {
    const payload = Buffer.from(
      text(INIT)
        .split('\r')
        .filter((s) => !s.startsWith('PV1|'))
        .join('\r'),
      'utf8',
    );
    const t = expectTechnicalError(await send(payload), 'AE', '100');
    expect(t).toMatch(/PV1/);
  });

  test('TXA-12 missing: AE 101; TXA-13 missing in a T10: AE 101', async () => {
    expectTechnicalError(await send(variant(INIT, { hl7: (m) => m.setRaw('TXA-12', '') })), 'AE', '101');
    const ack = await send(variant(RPLC, { hl7: (m) => m.setRaw('TXA-13', '') }));
    expectTechnicalError(ack, 'AE', '101');
    expect(ack.getRaw('ERR-2')).toBe('TXA^1^13^1^1');
  });

  test('ORC-1 or OBX-11 contradicting the event: AE 199', async () => {
    expectTechnicalError(await send(variant(RPLC, { hl7: (m) => m.set('ORC-1', 'NW') })), 'AE', '199');
    expectTechnicalError(await send(variant(INIT, { hl7: (m) => m.set('OBX-11', 'C') })), 'AE', '199');
  });

  test('no sender PRT (SB): AE 100', async () => {
    const payload = Buffer.from(
      text(INIT)
        .split('\r')
        .filter((s) => !s.startsWith('PRT||UC||SB'))
        .join('\r'),
      'utf8',
    );
    expectTechnicalError(await send(payload), 'AE', '100');
  });
});

describe('answer modes', () => {
  test('silent: no answer (the sender times out), nothing integrated; back to normal: AA', async () => {
    sim.setAnswer('silent');
    const impatient = new MllpClient({
      host: '127.0.0.1',
      port: sim.port,
      ackTimeoutMs: 300,
      reconnect: { maxAttempts: 1 },
    });
    try {
      const err = await impatient.send(example(INIT)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(MllpClientError);
      expect((err as MllpClientError).kind).toBe('timeout');
    } finally {
      await impatient.close();
    }
    // The sender gave up after 300 ms; the simulator sees the message whenever its socket is read.
    const received = () => sim.received().map((r) => [r.controlId, r.ack]);
    await vi.waitFor(() => expect(received()).toEqual([['015', '']]), { timeout: 20_000 });
    expect(sim.documents()).toEqual([]);
    sim.setAnswer('normal');
    expect((await send(example(INIT))).get('MSA-1')).toBe('AA');
    expect(sim.documents()).toHaveLength(1);
  });

  test('started silent', async () => {
    const quiet = await ConsommateurSimulator.start({ answer: 'silent', patients: [PAT_TROIS] });
    const impatient = new MllpClient({
      host: '127.0.0.1',
      port: quiet.port,
      ackTimeoutMs: 300,
      reconnect: { maxAttempts: 1 },
    });
    try {
      await expect(impatient.send(example(INIT))).rejects.toMatchObject({ kind: 'timeout' });
    } finally {
      await impatient.close();
      await quiet.stop();
    }
  });

  test('AR-transient: AR 207 / 906 to the next message, then AA to its resend', async () => {
    sim.setAnswer('AR-transient');
    const busy = await send(example(INIT));
    expect(busy.get('MSA-1')).toBe('AR');
    expect([busy.get('ERR-3.1'), busy.get('ERR-5.1'), busy.get('ERR-5.3')]).toEqual([
      '207',
      '906',
      'applicationErrorCode',
    ]);
    expect(sim.documents()).toEqual([]);
    const ok = await send(example(INIT));
    expect(ok.get('MSA-1')).toBe('AA');
    expect(sim.documents()).toHaveLength(1);
    expect(sim.received().map((r) => [r.ack, r.errors])).toEqual([
      ['AR', ['906']],
      ['AA', []],
    ]);
  });

  test('reset() forgets documents and messages, keeps the patients', async () => {
    await send(example(INIT));
    sim.reset();
    expect(sim.documents()).toEqual([]);
    expect(sim.received()).toEqual([]);
    expect((await send(example(INIT))).get('MSA-1')).toBe('AA');
    expect(sim.documents()).toHaveLength(1);
  });
});
