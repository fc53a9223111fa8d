import { execFile } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import type { JournalEntry } from '../../src/journal/journal.js';
import { EXAMPLES, ROOT, spawnEngine, tempDir, TOKEN, waitFor } from '../helpers/engine.js';

const run = promisify(execFile);

test('no patient data nor document content in the logs at info level, even for refused requests', async () => {
  const home = tempDir('logs');
  cpSync(join(ROOT, 'channels'), join(home, 'channels'), { recursive: true });
  for (const f of ['transmission.yaml', 'pam.yaml']) {
    const p = join(home, 'channels', f);
    writeFileSync(p, readFileSync(p, 'utf8').replace(/port: 257[56]/, 'port: 0'));
  }
  const e = await spawnEngine({ PFI_HOME: home, PFI_LOG_LEVEL: 'info' });
  try {
    const get = async (path: string) =>
      (await fetch(e.adminUrl + path, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    const files = [
      // A placeholder sentence instead of the CDA: refused, the sentence must not reach the logs.
      'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Transmission initiale MDM/' +
        'message_MDM_CR_Radio_INIT_N1.er7',
      // Another patient's documents: refused, neither INS must reach the logs.
      'Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Remplacement ORU/message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7',
    ];
    for (const f of files) {
      await run('mllp_send', [
        '--loose',
        '--port',
        String(e.ports.transmission),
        '--file',
        join(EXAMPLES, f),
        '127.0.0.1',
      ]);
    }
    await run('mllp_send', [
      '--loose',
      '--port',
      String(e.ports.pam),
      '--file',
      join(EXAMPLES, 'SGL', 'admission.er7'),
      '127.0.0.1',
    ]);
    await waitFor(async () => {
      const r = (await get('/messages?status=dead-lettered')) as { messages: JournalEntry[] };
      return r.messages.length >= 2;
    });
    await waitFor(
      async () =>
        ((await get('/messages?controlId=3975')) as { messages: JournalEntry[] }).messages[0]?.status === 'processed',
    );
    const text = JSON.stringify(e.logs);
    expect(e.logs.some((l) => l.msg === 'processing failed')).toBe(true);
    for (const secret of [
      '279035121518989',
      '277076322082910',
      'PAT-TROIS',
      'DOMINIQUE',
      'Document medcial',
      'NESSI',
    ]) {
      expect(text, secret).not.toContain(secret);
    }
  } finally {
    e.child.kill('SIGTERM');
    await e.stopped;
    rmSync(home, { recursive: true, force: true });
  }
});
