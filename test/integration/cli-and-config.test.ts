import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import { ChannelConfigError, loadChannels } from '../../src/config/channels.js';
import { readCdaHeader } from '../../src/cda/header.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import {
  ackOf,
  EXAMPLES,
  frame,
  RawMllp,
  ROOT,
  channelYaml,
  spawnEngine,
  startTestEngine,
  tempDir,
  TOKEN,
  waitFor,
} from '../helpers/engine.js';
import { sendFile } from '../helpers/send.js';

const run = promisify(execFile);
const CLI = join(ROOT, 'dist/src/cli/main.js');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function channelsDir(files: Record<string, string>): string {
  const dir = tempDir('channels');
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function problemsOf(dir: string): string[] {
  try {
    loadChannels(dir);
  } catch (e) {
    if (e instanceof ChannelConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('channel files', () => {
  test('the bundled channels are valid', () => {
    expect(problemsOf(join(ROOT, 'channels'))).toEqual([]);
  });

  test('a wrong value is reported with file, line, column and the problem', () => {
    const dir = channelsDir({ 'bad.yaml': channelYaml('bad').replace('port: 0', 'port: 70000') });
    const [p] = problemsOf(dir);
    expect(p).toMatch(/bad\.yaml:5:9: \/source\/port must be <= 65535/);
  });

  test('an unknown property, a missing one, a bad enum, a YAML syntax error, duplicate ids and ports', () => {
    const dir = channelsDir({
      'a.yaml': channelYaml('same').replace('host: 127.0.0.1', 'hots: 127.0.0.1'),
      'b.yaml': channelYaml('same').replace('port: 0', 'port: 2600').replace('flow: journal', 'flow: teleport'),
      'c.yaml': 'id: c\nsource: {type: mllp, port: 2600, accept: []}\nflow: journal\n',
      'd.yaml': 'id: d\n  source: [\n',
      'e.yaml': 'id: e\nflow: journal\n',
    });
    const all = problemsOf(dir).join('\n');
    expect(all).toMatch(/a\.yaml:\d+:\d+: \/source unknown property "hots"/);
    expect(all).toMatch(/b\.yaml:2:7: \/flow must be equal to one of the allowed values: journal, forward/);
    expect(all).toMatch(/c\.yaml:2:\d+: \/source\/accept must NOT have fewer than 1 items/);
    expect(all).toMatch(/d\.yaml:\d+:\d+: YAML syntax error/);
    expect(all).toMatch(/e\.yaml:1:1: \(top level\) must have required property 'source'/);
  });

  test('duplicate channel ids and ports across files', () => {
    const dir = channelsDir({
      'a.yaml': channelYaml('same').replace('port: 0', 'port: 2601'),
      'b.yaml': channelYaml('same').replace('port: 0', 'port: 2601'),
    });
    const all = problemsOf(dir).join('\n');
    expect(all).toContain('channel id "same" is already used by');
    expect(all).toContain('port 2601 is already used by');
  });

  test('the engine refuses to start on a wrong channel file and says where', async () => {
    const home = tempDir('bad-home');
    dirs.push(home);
    mkdirSync(join(home, 'channels'));
    writeFileSync(join(home, 'channels', 'x.yaml'), channelYaml('x').replace('type: mllp', 'type: mlp'));
    const err = await run(process.execPath, [CLI, 'start'], {
      cwd: home,
      env: { ...process.env, PFI_HOME: home },
    }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/invalid channel configuration, not starting/);
    expect(err.stderr).toMatch(/x\.yaml:4:9: \/source\/type must be equal to constant/);
  });

  test('pfi validate: exit 0 with the list on good files, 1 with problems on bad ones', async () => {
    const ok = await run(process.execPath, [CLI, 'validate', '--channels', join(ROOT, 'channels')]);
    expect(ok.stdout).toMatch(/^ok {2}transmission {2}port 2575 {2}flow transmission$/m);
    const bad = channelsDir({ 'z.yaml': 'id: Z\n' });
    const err = await run(process.execPath, [CLI, 'validate', '--channels', bad]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/z\.yaml:1:5: \/id must match pattern/);
  });
  test('pfi validate: mapping codes the DMP would refuse, and a broken mapping, are reported', async () => {
    const dir = channelsDir({});
    const mappingFile = join(channelsDir({}), 'map.yaml'); // not in the channels folder: it would be read as a channel
    writeFileSync(
      mappingFile,
      readFileSync(join(ROOT, 'mappings', 'transmission.yaml'), 'utf8')
        .replace('I: { code: "03"', 'I: { code: "ZZ"')
        .replace('defaults: {}', 'defaults:\n  practiceSettingCode: { code: NOPE, scheme: 1.2.250.1.213.1.1.4.9 }'),
    );
    writeFileSync(
      join(dir, 'c.yaml'),
      channelYaml('c').replace('flow: journal', `flow: transmission\nmapping: ${mappingFile}`),
    );
    const err = await run(process.execPath, [CLI, 'validate', '--channels', dir]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('contentTypeCode.I: ZZ (1.2.250.1.213.2.2) is not in JDV_J59 (DMP)');
    expect(err.stderr).toContain('defaults.practiceSettingCode: NOPE (1.2.250.1.213.1.1.4.9) is not in JDV_J62 (DMP)');
    writeFileSync(mappingFile, 'sourceId: not-an-oid\n');
    const bad = await run(process.execPath, [CLI, 'validate', '--channels', dir]).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/map\.yaml: sourceId must be an OID/);
  });
});

describe('pfi terminology', () => {
  test(
    'import of the official NOS files gives the committed terminology, ' + 'and drives class and format codes',
    async () => {
      const out = join(tempDir('terminology'), 'terminology.json');
      dirs.push(join(out, '..'));
      const imp = await run(process.execPath, [
        CLI,
        'terminology',
        'import',
        join(ROOT, '..', 'shared', 'reference', 'nos'),
        '--out',
        out,
      ]);
      expect(imp.stdout).toMatch(/value sets/);
      expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(ROOT, 'mappings', 'terminology.json'), 'utf8'));
      const cls = await run(process.execPath, [CLI, 'terminology', 'class-code', '18748-4', '--file', out]);
      expect(cls.stdout).toMatch(/^18748-4 -> 31 \(system 1\.2\.250\.1\.213\.1\.1\.4\.1/);
      const fmt = await run(process.execPath, [
        CLI,
        'terminology',
        'format-code',
        '1.3.6.1.4.1.19376.1.2.20',
        '--media-type',
        'application/pdf',
        '--file',
        out,
      ]);
      expect(fmt.stdout).toMatch(/^urn:ihe:iti:xds-sd:pdf:2008/);
      const no = await run(process.execPath, [
        CLI,
        'terminology',
        'check',
        'ZZ',
        '--value-set',
        'J57',
        '--file',
        out,
      ]).catch((e) => e);
      expect(no.code).toBe(1);
    },
  );
});

describe('a destination played by the engine’s CONSOMMATEUR simulator', () => {
  test(
    'simulator: consommateur starts a DPI with the patients of the file; ' +
      'the ANS LPS MDM sent to it is integrated (AA)',
    async () => {
      const lps = join(
        EXAMPLES,
        'Vague 2/Trans_LPS_CDA_MSSanté/TRANSMISSION_LPS_DOC_CDA_COURRIEL_FROM_MSSANTE_V1.1/' +
          'Transmission initiale MDM/message_MDM__LPS_MSS_CR_Radio_INIT_N1_Base64.er7',
      );
      const msg = Hl7Message.parse(readFileSync(lps));
      const rt = readCdaHeader(Buffer.from(msg.get('OBX-5.5')!, 'base64')).recordTarget;
      const dir = tempDir('sim-dest');
      dirs.push(dir);
      const patients = join(dir, 'patients.json');
      writeFileSync(
        patients,
        JSON.stringify([
          {
            ins: rt.ins,
            birthName: rt.birthName,
            givenNames: rt.givenNames.join(' '),
            birthDate: rt.birthDate,
            sex: rt.sex,
            birthPlaceCode: rt.birthPlaceCode,
          },
        ]),
      );
      const t = await startTestEngine({
        relay: channelYaml('relay', {
          extra: `flow: forward
destinations:
  - { id: dpi, type: mllp, simulator: consommateur, patients: ${patients} }
`,
        }).replace('flow: journal\n', ''),
      });
      try {
        msg.set('MSH-10', 'SIM-DEST-1');
        const c = await RawMllp.open(t.port('relay'));
        await c.write(frame(msg.toBuffer()));
        expect(ackOf((await c.waitAcks(1))[0]!).code).toBe('AA');
        c.close();
        const e = await waitFor(async () => {
          const r = (await (await t.api('/messages?controlId=SIM-DEST-1')).json()) as { messages: JournalEntry[] };
          return r.messages[0]?.status === 'processed' ? r.messages[0] : undefined;
        });
        expect(e.events.find((x) => x.destination === 'dpi')?.ackCode).toBe('AA');
      } finally {
        await t.stop();
      }
    },
  );
});

describe('pfi send', () => {
  test('sends each message of a file and prints the ACKs; exit 1 when one is not AA', async () => {
    const t = await startTestEngine({ main: channelYaml('main') });
    try {
      const file = join(EXAMPLES, 'SGL', 'admission.er7');
      const out = await run(process.execPath, [CLI, 'send', file, '--port', String(t.port())]);
      expect(out.stdout).toMatch(/^MSH\|\^~\\&\|DPI\|CHU-X\|GAM\|CHU-X\|\d{14}\|\|ACK\^A01\^ACK\|/m);
      expect(out.stdout).toMatch(/^MSA\|AA\|3975$/m);
      const two = join(tempDir('send'), 'two.hl7');
      dirs.push(join(two, '..'));
      const adt = readFileSync(file, 'utf8');
      writeFileSync(two, adt + '\n' + adt.replace('ADT^A01^ADT_A01|3975', 'ADT^A02^ADT_A02|3976'));
      const err = await run(process.execPath, [CLI, 'send', two, '--port', String(t.port())]).catch((e) => e);
      expect(err.code).toBe(1);
      expect(err.stdout).toMatch(/^MSA\|AA\|3975$/m);
      expect(err.stdout).toMatch(/^MSA\|AR\|3976$/m);
    } finally {
      await t.stop();
    }
  });
});

describe('embedded default', () => {
  test('pfi start with nothing configured: own Redis with AOF always under var/, stopped on exit', async () => {
    const home = tempDir('home');
    dirs.push(home);
    cpSync(join(ROOT, 'channels'), join(home, 'channels'), { recursive: true });
    // Same bundled channel, on a free port so that tests may run beside a running engine.
    const yaml = readFileSync(join(home, 'channels', 'transmission.yaml'), 'utf8').replace('port: 2575', 'port: 0');
    writeFileSync(join(home, 'channels', 'transmission.yaml'), yaml);
    const env: Record<string, string> = { PFI_HOME: home, PFI_ADMIN_TOKEN: '' };
    delete process.env.PFI_REDIS_URL;
    const e = await spawnEngine(env);
    expect(e.logs.some((l) => l.msg === 'embedded Redis started')).toBe(true);
    const token = readFileSync(join(home, 'var', 'admin-token'), 'utf8').trim();
    expect(token).not.toBe(TOKEN);
    const h = (await (await fetch(e.adminUrl + '/health')).json()) as { status: string };
    expect(h.status).toBe('ok');
    const unauth = await fetch(e.adminUrl + '/channels');
    expect(unauth.status).toBe(401);
    const ch = await fetch(e.adminUrl + '/channels', { headers: { authorization: `Bearer ${token}` } });
    expect(ch.status).toBe(200);
    expect(existsSync(join(home, 'var', 'redis', 'appendonlydir'))).toBe(true);
    // The bundled channel feeds the embedded DMP simulator: the demo document reaches it.
    expect(e.logs.some((l) => l.msg?.toString().startsWith('DMP simulator started'))).toBe(true);
    const demo = join(ROOT, 'fixtures', 'mdm-t02-demo.hl7');
    expect(await sendFile(demo, readFileSync(demo), e.ports.transmission!)).toMatch(/^MSA\|AA\|DEMO-MDM-0001$/m);
    const auth = { headers: { authorization: `Bearer ${token}` } };
    const id = await waitFor(
      async () =>
        (
          (await (await fetch(`${e.adminUrl}/messages?controlId=DEMO-MDM-0001`, auth)).json()) as {
            messages: { id: string }[];
          }
        ).messages[0]?.id,
    );
    await waitFor(
      async () =>
        ((await (await fetch(`${e.adminUrl}/submissions/${id}`, auth)).json()) as { state?: string }).state ===
        'accepted',
      15_000,
      'the demo document in the DMP simulator',
    );
    const pid = Number(readFileSync(join(home, 'var', 'redis', 'redis.pid'), 'utf8'));
    e.child.kill('SIGTERM');
    expect(await e.stopped).toBe(0);
    await waitFor(async () => !existsSync(`/proc/${pid}`), 10_000, 'redis-server to stop');
  });

  test('after kill -9 of the engine, the next start adopts its running Redis', async () => {
    const home = tempDir('home2');
    dirs.push(home);
    mkdirSync(join(home, 'channels'));
    writeFileSync(join(home, 'channels', 'main.yaml'), channelYaml('main'));
    const first = await spawnEngine({ PFI_HOME: home });
    first.child.kill('SIGKILL');
    await first.stopped;
    const second = await spawnEngine({ PFI_HOME: home });
    expect(second.logs.some((l) => l.msg === 'embedded Redis adopted')).toBe(true);
    second.child.kill('SIGTERM');
    const code = await second.stopped;
    expect(second.stderr()).toBe('');
    expect(code).toBe(0);
  });
});
