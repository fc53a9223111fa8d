import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { DmpStatus } from '../../src/dmp/delivery.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { DmpSimulator } from '../../src/sim/dmp.js';
import { EXAMPLES, spawnEngine, tempDir, TOKEN, waitFor, type SpawnedEngine } from '../helpers/engine.js';
import { sendFile } from '../helpers/send.js';
import { makeTestPki } from '../helpers/tls.js';

const INIT = join(
  EXAMPLES,
  'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Transmission initiale MDM/' +
    'message_MDM_CR_Radio_INIT_N1_Base64.er7',
);

let dir: string;
let redis: EmbeddedRedis;
let sim: DmpSimulator;

beforeAll(async () => {
  dir = tempDir('dmp-crash');
  mkdirSync(join(dir, 'channels'));
  const pki = makeTestPki();
  sim = await DmpSimulator.start({
    tls: { cert: pki.pem['server.crt'], key: pki.pem['server.key'], ca: pki.pem['ca.crt'] },
    sealCertificates: [pki.pem['client.crt']],
  });
  const source =
    '{ type: mllp, host: 127.0.0.1, port: 0, profile: cisis-transmission, ' +
    'accept: [{ type: MDM, events: [T02, T04, T10], versions: ["2.6"] }] }';
  writeFileSync(
    join(dir, 'channels', 'dmp.yaml'),
    `id: dmp
flow: transmission
mapping: mappings/transmission.yaml
source: ${source}
processing: { attempts: 3, backoffSeconds: 0.2 }
dmp:
  url: ${sim.url}
  tls: { cert: ${pki.files['client.crt']}, key: ${pki.files['client.key']}, ca: ${pki.files['ca.crt']} }
  seal: { cert: ${pki.files['client.crt']}, key: ${pki.files['client.key']} }
  sector: SA01^1.2.250.1.71.4.2.4
  lps: { homologation: TEST }
  timeoutSeconds: 30
  attempts: 5
  backoffSeconds: 0.2
`,
  );
  redis = await startEmbeddedRedis({ dir: join(dir, 'redis') });
});

afterAll(async () => {
  await sim?.stop();
  await redis?.stop();
});

const get = async (e: SpawnedEngine, path: string) =>
  (await fetch(e.adminUrl + path, { headers: { authorization: `Bearer ${TOKEN}` } })).json();

/** Sends the ANS example (qualified identity), returns the journal id. */
async function send(e: SpawnedEngine, controlId: string): Promise<string> {
  const msg = Hl7Message.parse(readFileSync(INIT));
  msg.set('MSH-10', controlId);
  msg.set('PID-32', 'QUAL');
  const file = join(dir, `${controlId}.hl7`);
  writeFileSync(file, msg.toBuffer());
  expect(await sendFile(file, msg.toBuffer(), e.ports.dmp!)).toMatch(new RegExp(`^MSA\\|AA\\|${controlId}$`, 'm'));
  return waitFor(
    async () => ((await get(e, `/messages?controlId=${controlId}`)) as { messages: JournalEntry[] }).messages[0]?.id,
  );
}

describe('engine killed -9 during a DMP call', () => {
  for (const [mode, what] of [
    ['slow', 'the DMP had stored the document: after restart the engine finds it (ITI-18) and does not send it again'],
    ['timeout', 'the DMP had not stored it: after restart the engine sends it'],
  ] as const) {
    test(
      what,
      async () => {
        sim.reset();
        const env = { PFI_HOME: dir, PFI_REDIS_URL: redis.url, PFI_VAR_DIR: join(dir, 'var') };
        const first = await spawnEngine(env);
        sim.failNext(1, mode, { delayMs: 20_000 });
        const id = await send(first, `CRASH-${mode}`);
        // Killed while the ITI-41 is in flight (the simulator holds its answer).
        await waitFor(async () => sim.requests().length === 1, 40_000, 'the ITI-41 to reach the simulator');
        first.child.kill('SIGKILL');
        await first.stopped;

        const second = await spawnEngine(env);
        try {
          const s = await waitFor(
            async () => {
              const r = (await get(second, `/submissions/${id}`)) as DmpStatus;
              return r.state === 'accepted' ? r : undefined;
            },
            60_000,
            'the DMP sending to be accepted after restart',
          );
          expect(s.entries).toHaveLength(1);
          expect(sim.documents()).toHaveLength(1);
          expect(sim.documents()[0]!.entryUUID).toBe(s.entries![0]);
          const iti41 = sim.requests().filter((r) => r.action.endsWith('ProvideAndRegisterDocumentSet-b'));
          expect(iti41).toHaveLength(mode === 'slow' ? 1 : 2);
        } finally {
          second.child.kill('SIGTERM');
          await second.stopped;
        }
      },
      150_000,
    );
  }
});
