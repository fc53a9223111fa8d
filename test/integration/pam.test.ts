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
  t = await startTestEngine({
    pam: readFileSync(join(ROOT, 'channels', 'pam.yaml'), 'utf8').replace('port: 2576', 'port: 0'),
  });
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

const patient = async () =>
  (await (await t.api(`/patients?id=${INS.id}&authority=${INS.authority}`)).json()) as Patient;

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
    writeFileSync(
      late,
      readFileSync(join(CONSENT, 'ConsentementConsultation_NonOppositionAlimentation.er7'), 'utf8').replace(
        '|ADT^A01^ADT_A01|3975|',
        '|ADT^A01^ADT_A01|LATE-3975|',
      ),
    );
    await send(late);
    const p = await patient();
    expect(p.consent).toMatchObject({ feeding: { value: 'NA' }, consultation: { value: 'NA' } });
  });
});

describe('unknown events (channel policy unknownEvents: ignore)', () => {
  test(
    'an ADT event the channel does not handle is acknowledged AA, ' + 'journaled as discarded, not processed',
    async () => {
      const file = join(tempDir('a09'), 'a09.er7');
      writeFileSync(
        file,
        readFileSync(join(EXAMPLES, 'SGL', 'admission.er7'), 'utf8').replace(
          '|ADT^A01^ADT_A01|3975|',
          '|ADT^A09^ADT_A09|A09-1|',
        ),
      );
      const { stdout } = await run('mllp_send', ['--loose', '--port', String(t.port()), '--file', file, '127.0.0.1']);
      expect(stdout).toMatch(/^MSA\|AA\|A09-1$/m);
      const r = (await (await t.api('/messages?controlId=A09-1')).json()) as { messages: JournalEntry[] };
      expect(r.messages[0]).toMatchObject({ status: 'discarded' });
      expect(r.messages[0]!.events[0]!.detail).toMatch(/not handled by this channel/);
    },
  );
});

describe('SGL admission and discharge', () => {
  test('both acknowledged AA and recorded on the stay', async () => {
    await send(join(EXAMPLES, 'SGL', 'admission.er7'));
    await send(join(EXAMPLES, 'SGL', 'sortie.er7'));
    const p = await patient();
    expect(p.ids.some((i) => i.type === 'PI' && i.id === '000003')).toBe(true);
  });
});

describe('identity store and transmission requests', () => {
  test('after an A40 merge, an MDM sent with the old IPP resolves to the surviving, qualified patient', async () => {
    const dir = tempDir('merge');
    const transmission = readFileSync(join(ROOT, 'channels', 'transmission.yaml'), 'utf8').replace(
      'port: 2575',
      'port: 0',
    );
    const pam = readFileSync(join(ROOT, 'channels', 'pam.yaml'), 'utf8').replace('port: 2576', 'port: 0');
    const e = await startTestEngine({ transmission, pam });
    try {
      const fixture = splitMessages(readFileSync(join(ROOT, 'fixtures', 'mdm-t02-demo.hl7')))[0]!;
      const ins = Hl7Message.parse(fixture).get('PID-3[1].1')!;
      const msh = (id: string, event: string, structure: string) =>
        `MSH|^~\\&|GAM|CH-DEMO|PFI|CH-DEMO|20261121090000||ADT^${event}^${structure}|${id}|P|2.5^FRA^2.11|` +
        '||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM';
      const pid = (ids: string, status: string) => {
        const f = Array<string>(33).fill('');
        Object.assign(f, {
          0: 'PID',
          1: '1',
          3: ids,
          5: 'DEMO^CAMILLE^CAMILLE^^^^L',
          7: '19800101',
          8: 'F',
          32: status,
        });
        return f.join('|');
      };
      const old = 'DEMO0001^^^CH-DEMO&1.2.250.1.999.9.1&ISO^PI';
      const neu = `NEW0002^^^CH-DEMO&1.2.250.1.999.9.1&ISO^PI~${ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS`;
      const adts = [
        [msh('M1', 'A28', 'ADT_A05'), 'EVN||20261121080000', pid(old, 'PROV')],
        [msh('M2', 'A28', 'ADT_A05'), 'EVN||20261121081000', pid(neu, 'QUAL')],
        [msh('M3', 'A40', 'ADT_A39'), 'EVN||20261121082000', pid(neu, 'QUAL'), `MRG|${old}`],
      ];
      for (const segs of adts) {
        const file = join(dir, `${segs[0]!.split('|')[9]}.hl7`);
        writeFileSync(file, segs.join('\n') + '\n');
        const { stdout } = await run('mllp_send', [
          '--loose',
          '--port',
          String(e.port('pam')),
          '--file',
          file,
          '127.0.0.1',
        ]);
        expect(stdout).toMatch(/MSA\|AA\|/);
        const id = segs[0]!.split('|')[9]!;
        await waitFor(
          async () =>
            ((await (await e.api(`/messages?controlId=${id}`)).json()) as { messages: JournalEntry[] }).messages[0]
              ?.status === 'processed',
        );
      }
      const survivor = (await (await e.api('/patients?id=NEW0002&authority=1.2.250.1.999.9.1')).json()) as Patient;
      const viaOld = (await (await e.api('/patients?id=DEMO0001&authority=1.2.250.1.999.9.1')).json()) as Patient;
      expect(viaOld.id).toBe(survivor.id);
      expect(survivor.qualified).toBe(true);

      const file = join(dir, 'mdm.hl7');
      writeFileSync(file, fixture.toString('utf8').replace(/\r/g, '\n'));
      await run('mllp_send', ['--loose', '--port', String(e.port('transmission')), '--file', file, '127.0.0.1']);
      const entry = await waitFor(async () => {
        const r = (await (await e.api('/messages?controlId=DEMO-MDM-0001')).json()) as { messages: JournalEntry[] };
        return r.messages[0]?.status === 'processed' ? r.messages[0] : undefined;
      });
      const sub = (await (await e.api(`/messages/${entry.id}/submission`)).json()) as {
        patient: { storeId: string; qualified: boolean; dmpAllowed: boolean; insMatches: boolean };
      };
      expect(sub.patient).toMatchObject({ storeId: survivor.id, qualified: true, dmpAllowed: true, insMatches: true });
    } finally {
      await e.stop();
    }
  });
});

describe('identity cross-check of transmission requests', () => {
  test(
    'an INS differing from the qualified one the store holds: ' + 'a warning, or a refusal when the channel says so',
    async () => {
      const dir = tempDir('xcheck');
      const base = readFileSync(join(ROOT, 'channels', 'transmission.yaml'), 'utf8').replace('port: 2575', 'port: 0');
      const e = await startTestEngine({
        warn: base.replace('id: transmission', 'id: warn'),
        strict: base.replace('id: transmission', 'id: strict') + 'identityCheck: reject\n',
        pam: readFileSync(join(ROOT, 'channels', 'pam.yaml'), 'utf8').replace('port: 2576', 'port: 0'),
      });
      try {
        // The GAM knows DEMO0001 with another qualified INS than the one the DPI sends.
        const f = Array<string>(33).fill('');
        Object.assign(f, {
          0: 'PID',
          1: '1',
          3:
            'DEMO0001^^^CH-DEMO&1.2.250.1.999.9.1&ISO^PI' +
            '~280017512345709^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS',
          5: 'DEMO^CAMILLE^^^^^L',
          7: '19800101',
          8: 'F',
          32: 'QUAL',
        });
        const adt = [
          'MSH|^~\\&|GAM|CH-DEMO|PFI|CH-DEMO|20261121090000||ADT^A28^ADT_A05|X1|P|2.5^FRA^2.11|' +
            '||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM',
          'EVN||20261121080000',
          f.join('|'),
        ];
        writeFileSync(join(dir, 'adt.hl7'), adt.join('\n') + '\n');
        await run('mllp_send', [
          '--loose',
          '--port',
          String(e.port('pam')),
          '--file',
          join(dir, 'adt.hl7'),
          '127.0.0.1',
        ]);
        await waitFor(
          async () =>
            ((await (await e.api('/messages?controlId=X1')).json()) as { messages: JournalEntry[] }).messages[0]
              ?.status === 'processed',
        );

        const fixture = readFileSync(join(ROOT, 'fixtures', 'mdm-t02-demo.hl7'), 'utf8');
        const outcome = async (channel: string, controlId: string) => {
          writeFileSync(join(dir, `${controlId}.hl7`), fixture.replace('|DEMO-MDM-0001|', `|${controlId}|`));
          await run('mllp_send', [
            '--loose',
            '--port',
            String(e.port(channel)),
            '--file',
            join(dir, `${controlId}.hl7`),
            '127.0.0.1',
          ]);
          return waitFor(async () => {
            const m = ((await (await e.api(`/messages?controlId=${controlId}`)).json()) as { messages: JournalEntry[] })
              .messages[0];
            return m && ['processed', 'dead-lettered'].includes(m.status) ? m : undefined;
          });
        };
        const warned = await outcome('warn', 'XC-WARN');
        expect(warned.status).toBe('processed');
        expect(
          warned.events.some((x) => /warning: the INS sent .* differs from the qualified INS/.test(x.detail ?? '')),
        ).toBe(true);
        const refused = await outcome('strict', 'XC-STRICT');
        expect(refused.status).toBe('dead-lettered');
        expect(refused.events.find((x) => x.status === 'dead-lettered')!.error!.message).toMatch(
          /^\[PID-3-equals-known-identity\]/,
        );
      } finally {
        await e.stop();
      }
    },
  );
});

describe('the README demo', () => {
  test('the ADT and the MDM fixtures: the document’s patient is known, qualified, and may go to the DMP', async () => {
    const e = await startTestEngine({
      transmission: readFileSync(join(ROOT, 'channels', 'transmission.yaml'), 'utf8').replace('port: 2575', 'port: 0'),
      pam: readFileSync(join(ROOT, 'channels', 'pam.yaml'), 'utf8').replace('port: 2576', 'port: 0'),
    });
    try {
      const cli = join(ROOT, 'dist/src/cli/main.js');
      await run(process.execPath, [
        cli,
        'send',
        '--port',
        String(e.port('pam')),
        join(ROOT, 'fixtures', 'adt-a01-demo.hl7'),
      ]);
      await waitFor(
        async () =>
          ((await (await e.api('/messages?controlId=DEMO-ADT-0001')).json()) as { messages: JournalEntry[] })
            .messages[0]?.status === 'processed',
      );
      await run(process.execPath, [
        cli,
        'send',
        '--port',
        String(e.port('transmission')),
        join(ROOT, 'fixtures', 'mdm-t02-demo.hl7'),
      ]);
      const entry = await waitFor(async () => {
        const m = ((await (await e.api('/messages?controlId=DEMO-MDM-0001')).json()) as { messages: JournalEntry[] })
          .messages[0];
        return m?.status === 'processed' ? m : undefined;
      });
      const sub = (await (await e.api(`/messages/${entry.id}/submission`)).json()) as {
        patient: Record<string, unknown>;
        routes: { dmp: boolean };
      };
      expect(sub.routes.dmp).toBe(true);
      expect(sub.patient).toMatchObject({ qualified: true, dmpAllowed: true, insMatches: true });
    } finally {
      await e.stop();
    }
  });
});
