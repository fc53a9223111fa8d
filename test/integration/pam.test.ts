import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { splitMessages } from '../../src/cli/split.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import type { Patient } from '../../src/identity/store.js';
import { EXAMPLES, ROOT, startTestEngine, tempDir, waitFor, type TestEngine } from '../helpers/engine.js';

const run = promisify(execFile);
const CONSENT = join(EXAMPLES, 'Vague 2', 'Consentement_DMP_PAMFR');
const INS = { id: '279035121518989', authority: '1.2.250.1.213.1.4.10' };

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ pam: readFileSync(join(ROOT, 'channels', 'pam.yaml'), 'utf8').replace('port: 2576', 'port: 0') });
});
afterAll(() => t?.stop());

async function send(file: string): Promise<JournalEntry> {
  const controlId = splitMessages(readFileSync(file))[0]!.toString('utf8').split('|')[9]!;
  const { stdout } = await run('mllp_send', ['--loose', '--port', String(t.port()), '--file', file, '127.0.0.1']);
  expect(stdout.replace(/\r/g, '\n')).toMatch(new RegExp(`^MSA\\|AA\\|${controlId}$`, 'm'));
  return waitFor(async () => {
    const r = (await (await t.api(`/messages?controlId=${controlId}`)).json()) as { messages: JournalEntry[] };
    return r.messages[0]?.status === 'processed' ? r.messages[0] : undefined;
  });
}

const patient = async () => (await (await t.api(`/patients?id=${INS.id}&authority=${INS.authority}`)).json()) as Patient;

describe('ANS PAM FR examples (consent), sent with mllp_send', () => {
  // File, ZFA-9 feeding, ZFA-11 consultation, as the files' names say.
  const cases: [string, string, string][] = [
    ['ConsentementConsultation_NonOppositionAlimentation.er7', 'INO', 'IC'],
    ['NonConsentementConsultation_NonOppositionAlimentation.er7', 'INO', 'INC'],
    ['NonConsentementConsultation_OppositionAlimentation.er7', 'IO', 'INC'],
    ['NonRecueillieConsentementConsultation_NonOppositionAlimentation.er7', 'INO', 'NA'],
    ['NonRecueillieConsentementConsultation_NonRecueillieOppositionAlimentation.er7', 'NA', 'NA'],
  ];
  for (const [file, feeding, consultation] of cases) {
    test(file, async () => {
      await send(join(CONSENT, file));
      const visit = Hl7Message.parse(splitMessages(readFileSync(join(CONSENT, file)))[0]!).get('PV1-19.1');
      const p = await patient();
      const stay = p.stays.find((s) => s.visit.id === visit)!;
      expect(stay.consent?.feeding?.value).toBe(feeding);
      expect(stay.consent?.consultation?.value).toBe(consultation);
      expect(p.traits.birthName).toBe('PAT-TROIS');
      expect(p.traits.birthPlaceCode).toBe('63220');
      expect(p.reliability).toBe('VALI');
      expect(p.qualified).toBe(false); // VALI, not QUAL: the DMP may not be fed
    });
  }

  test('the patient keeps the newest consent, one stay per visit, and a history', async () => {
    const p = await patient();
    expect(p.consent).toMatchObject({ feeding: { value: 'NA' }, consultation: { value: 'NA' } });
    expect(p.stays.length).toBeGreaterThanOrEqual(5);
    const byId = (await (await t.api(`/patients/${p.id}`)).json()) as Patient & { history: unknown[] };
    expect(byId.history.length).toBeGreaterThanOrEqual(5);
    expect((await t.api('/patients?id=nobody&authority=1.2.3')).status).toBe(404);
  });

  test('a message received late does not overwrite the newer consent', async () => {
    // The first example again, as a new message (its own MSH-10) whose event time is the oldest.
    const late = join(tempDir('late'), 'late.er7');
    writeFileSync(late, readFileSync(join(CONSENT, 'ConsentementConsultation_NonOppositionAlimentation.er7'), 'utf8').replace('|ADT^A01^ADT_A01|3975|', '|ADT^A01^ADT_A01|LATE-3975|'));
    await send(late);
    const p = await patient();
    expect(p.consent).toMatchObject({ feeding: { value: 'NA' }, consultation: { value: 'NA' } });
  });
});

describe('SGL admission and discharge', () => {
  test('both acknowledged AA and recorded on the stay', async () => {
    await send(join(EXAMPLES, 'SGL', 'admission.er7'));
    await send(join(EXAMPLES, 'SGL', 'sortie.er7'));
    const p = await patient();
    expect(p.ids.some((i) => i.type === 'PI' && i.id === '000003')).toBe(true);
  });
});
