import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startEngine, type Engine } from '../../src/engine.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { readAck } from '../../src/hl7v2/ack.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { loadSettings } from '../../src/settings.js';
import type { Clock } from '../../src/util/clock.js';
import { createLogger } from '../../src/util/log.js';
import { packageRoot } from '../../src/util/paths.js';

export const ROOT = packageRoot();
export const REFERENCE = join(ROOT, '..', 'shared', 'reference');
export const EXAMPLES = join(REFERENCE, 'ansforge', 'hl7v2-exemples');
export const TOKEN = 'test-token-0123456789';

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `pfi-${name}-`));
}

/** A channel YAML for tests: port 0 (any free port), extra source lines and extra top-level lines. */
export function channelYaml(id: string, more: { source?: string; extra?: string } = {}): string {
  return `id: ${id}
flow: journal
source:
  type: mllp
  port: 0
  host: 127.0.0.1
${more.source ? '  ' + more.source.trim().split('\n').join('\n  ') + '\n' : ''}  accept:
    - { type: MDM, events: [T02, T04, T10], versions: ["2.6"] }
    - { type: ORU, events: [R01], versions: ["2.5"] }
    - { type: ADT, events: [A01, A04, A08], versions: ["2.5"] }
${more.extra ?? ''}`;
}

/**
 * A `flow: transmission` channel as the tests of the deliveries use it: the volet's profile, MDM and
 * ORU, the CREATEUR's ZAM listener on `createurPort`; `extra` (YAML, top level) adds the delivery.
 */
export function transmissionChannelYaml(id: string, createurPort: number, extra: string): string {
  return `id: ${id}
flow: transmission
mapping: mappings/transmission.yaml
source:
  type: mllp
  host: 127.0.0.1
  port: 0
  profile: cisis-transmission
  accept:
    - { type: MDM, events: [T02, T04, T10], versions: ["2.6"] }
    - { type: ORU, events: [R01], versions: ["2.5"] }
businessAcks: { host: 127.0.0.1, port: ${createurPort}, ackTimeoutSeconds: 60 }
${extra.trim()}
`;
}

export interface TestEngine {
  engine: Engine;
  redis: EmbeddedRedis;
  dir: string;
  port(channel?: string): number;
  api(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

/**
 * An engine in this process with its own real Redis (so test files never share queues), channels
 * written from YAML strings.
 */
export async function startTestEngine(
  channels: Record<string, string>,
  opts: { redis?: EmbeddedRedis; env?: Record<string, string>; clock?: Clock } = {},
): Promise<TestEngine> {
  const dir = tempDir('engine');
  const channelsDir = join(dir, 'channels');
  mkdirSync(channelsDir);
  for (const [name, yaml] of Object.entries(channels)) writeFileSync(join(channelsDir, `${name}.yaml`), yaml);
  const redis = opts.redis ?? (await startEmbeddedRedis({ dir: join(dir, 'redis') }));
  const settings = loadSettings({
    PFI_HOME: dir,
    PFI_REDIS_URL: redis.url,
    PFI_ADMIN_PORT: '0',
    PFI_ADMIN_TOKEN: TOKEN,
    ...opts.env,
  });
  const engine = await startEngine(settings, createLogger(process.env.PFI_TEST_LOG ?? 'silent'), { clock: opts.clock });
  return {
    engine,
    redis,
    dir,
    port: (channel) => {
      const c = channel ? engine.channels.find((x) => x.config.id === channel) : engine.channels[0];
      return c!.listeningPort!;
    },
    api: (path, init) =>
      fetch(engine.adminUrl + path, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init?.headers } }),
    stop: async () => {
      await engine.stop();
      if (!opts.redis) await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The engine as the operator runs it: `node dist/src/cli/main.js start`, logs parsed from stdout. */
export interface SpawnedEngine {
  child: ChildProcess;
  ports: Record<string, number>;
  adminUrl: string;
  logs: Record<string, unknown>[];
  stderr(): string;
  stopped: Promise<number | null>;
}

export function spawnEngine(env: Record<string, string>): Promise<SpawnedEngine> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), 'start'], {
    env: { ...process.env, PFI_ADMIN_PORT: '0', PFI_ADMIN_TOKEN: TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const ports: Record<string, number> = {};
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const stopped = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return new Promise((resolve, reject) => {
    // Only turns a failed start into an error: a loaded machine may take long (8 s seen beside other runs).
    const timer = setTimeout(() => reject(new Error(`engine did not start in 60 s: ${stderr}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`engine exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(rec);
      if (rec.msg === 'MLLP listener up') ports[rec.channel as string] = rec.port as number;
      if (rec.msg === 'PFI engine started') {
        clearTimeout(timer);
        resolve({ child, ports, adminUrl: rec.admin as string, logs, stopped, stderr: () => stderr });
      }
    });
  });
}

export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;

export function frame(payload: Buffer | string): Buffer {
  const b = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from([VT]), b, Buffer.from([FS, CR])]);
}

/** A raw MLLP connection for tests that need to send odd bytes; collects ACK payloads. */
export class RawMllp {
  readonly acks: Buffer[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private constructor(readonly socket: Socket) {
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const start = this.buf.indexOf(VT);
        const end = this.buf.indexOf(Buffer.from([FS, CR]));
        if (start < 0 || end < 0) break;
        this.acks.push(this.buf.subarray(start + 1, end));
        this.buf = this.buf.subarray(end + 2);
      }
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => {});
  }
  static open(port: number): Promise<RawMllp> {
    return new Promise((ok, fail) => {
      const s = connect(port, '127.0.0.1', () => ok(new RawMllp(s)));
      s.once('error', fail);
    });
  }
  private notify() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  write(data: Buffer | string): Promise<void> {
    return new Promise((ok) => this.socket.write(data, () => ok()));
  }
  /** Waits until n ACKs in total have arrived (or the connection closed). */
  async waitAcks(n: number, timeoutMs = 10_000): Promise<Buffer[]> {
    const until = Date.now() + timeoutMs;
    while (this.acks.length < n && !this.closed) {
      if (Date.now() > until) throw new Error(`timeout waiting for ${n} ACKs, got ${this.acks.length}`);
      await new Promise<void>((ok) => {
        this.waiters.push(ok);
        setTimeout(ok, 100);
      });
    }
    return this.acks.slice(0, n);
  }
  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < until) await new Promise((ok) => setTimeout(ok, 20));
    return this.closed;
  }
  close() {
    this.socket.destroy();
  }
}

/** MSA-1, MSA-2 and the first ERR-3 code of an ACK, plus MSH-9. */
export function ackOf(payload: Buffer) {
  const msg = Hl7Message.parse(payload);
  const a = readAck(msg);
  return { code: a.code, controlId: a.controlId, error: a.errors[0]?.code, type: msg.get('MSH-9'), msg };
}

/** A minimal valid message of the given type; extra segments appended. */
export function hl7(
  opts: {
    type?: string;
    version?: string;
    controlId?: string;
    charset?: string;
    segments?: string[];
    app?: string;
  } = {},
): string {
  const type = opts.type ?? 'MDM^T02^MDM_T02';
  const controlId = opts.controlId ?? 'MSG' + Math.random().toString(36).slice(2, 10);
  const segs = [
    `MSH|^~\\&|${opts.app ?? 'DPI-TEST'}|CHU-TEST|PFI|CHU-TEST|20261121101500||${type}|${controlId}|P|` +
      `${opts.version ?? '2.6'}|||||FRA|${opts.charset ?? 'UNICODE UTF-8'}|||2.1^CISIS_CDA_HL7_V2`,
    'EVN||20261121101500',
    'PID|||IPP0001^^^CHU-TEST&1.2.250.1.999.1&ISO^PI||TEST^PATIENT^^^^^L||19800101|F',
    'PV1|1|O',
    ...(opts.segments ?? [
      'TXA|1|11488-4|TEXT|20261121101500||||||||DOC-0001|||||AU',
      'OBX|1|ED|11488-4^CR consultation^LN||^TEXT^XML^Base64^PGRvYy8+||||||F',
    ]),
  ];
  return segs.join('\r') + '\r';
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timeout waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}
