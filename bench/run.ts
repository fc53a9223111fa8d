/**
 * `npm run bench`: ingest throughput and big-message memory of the engine, run as a child process
 * against a private redis-server (appendfsync always), compared with a bare MLLP responder.
 *
 * stdout: one JSON object per measurement (nothing else). stderr: progress.
 *
 * Environment:
 *   BENCH_SECONDS      measurement window of each throughput run (default 10; warm-up is 2 s)
 *   BENCH_WARMUP       warm-up seconds (default 2)
 *   BENCH_CONNECTIONS  concurrent MLLP connections (default 8)
 *   BENCH_CLIENT       raw (default: node:net + project framing) or mllpclient (the project's MllpClient)
 *   BENCH_BIG_MIB      size of the big MDM^T02 (default 20)
 *   BENCH_ONLY         comma list among adt,pam,bare,big,interpret,parsers,dmp,mss,intake (default all)
 *   BENCH_INTAKE_MAILS mails received in the MSSanté intake run (default 100, 100 KiB documents; needs root: Postfix)
 *   BENCH_MSS_MAILS    mails sent in the MSSanté delivery run (default 200, 100 KiB documents; needs root: Postfix)
 *   BENCH_DMP_DOCS     documents sent in the DMP delivery run (default 300, 100 KiB each)
 *   BENCH_ENGINE_NODE_ARGS  extra node flags for the engine child (space separated), e.g.
 *                      "--cpu-prof --cpu-prof-dir=/tmp/prof" (not allowed in NODE_OPTIONS)
 *   BENCH_APPENDFSYNC  redis AOF fsync policy (default always, the engine's default; everysec/no for diagnosis)
 *   BENCH_ENGINE_ROLE  PFI_ROLE of the engine child (default all; "ingest" = listeners only, to isolate the ACK path)
 *   BENCH_KEEP         1 = keep the temp dir (redis AOF, logs)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startEmbeddedRedis, type EmbeddedRedis } from '../src/redis/embedded.js';
import { MllpClient } from '../src/mllp/client.js';
import { extractAck } from '../src/mllp/correlate.js';
import { packageRoot } from '../src/util/paths.js';
import { AdtFactory, buildBigMdm } from './hl7.js';
import { benchInterpret } from './interpret.js';
import { benchParsers } from './parsers.js';
import { benchDmp, dmpChannelYaml } from './dmp.js';
import { benchMssante, mssChannelYaml } from './mssante.js';
import { benchIntake, intakeChannelYaml, intakePatient } from './intake.js';
import { ConsommateurSimulator } from '../src/sim/consommateur.js';
import { startMailEnv, stopMailEnv, type MailEnv } from '../test/helpers/mail.js';
import { DmpSimulator } from '../src/sim/dmp.js';
import { ensureSimPki } from '../src/sim/pki.js';
import { runLoad, type ClientKind, type LoadResult } from './load.js';

const ADT_TARGET_MSG_PER_SEC = 3000;
const BIG_GROWTH_TARGET = 5;
const ADMIN_TOKEN = 'bench';
const HOST = '127.0.0.1';
const MiB = 1024 * 1024;

const env = process.env;
const SECONDS = Number(env.BENCH_SECONDS ?? 10);
const WARMUP = Number(env.BENCH_WARMUP ?? 2);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 8);
const CLIENT = (env.BENCH_CLIENT ?? 'raw') as ClientKind;
const BIG_MIB = Number(env.BENCH_BIG_MIB ?? 20);
const APPENDFSYNC = (env.BENCH_APPENDFSYNC ?? 'always') as 'always' | 'everysec' | 'no';
const ALL = 'adt,pam,bare,big,interpret,parsers,dmp,mss,intake';
const ONLY = new Set((env.BENCH_ONLY ?? ALL).split(',').map((s) => s.trim()));

const here = dirname(fileURLToPath(import.meta.url));
const root = packageRoot();

function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}
function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: HOST, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
}

// ---------------------------------------------------------------- /proc readings

function procStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`${field} not found in /proc/${pid}/status`);
  return Number(m[1]);
}
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}
/** utime + stime in seconds. */
function cpuSeconds(pid: number | string): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after "(comm)": state=0 ... utime=11, stime=12 (1-based 14 and 15 in proc(5))
  return (Number(f[11]) + Number(f[12])) / 100;
}
/** All CPUs busy time (user+nice+system+irq+softirq+steal) in seconds, from /proc/stat. */
function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return (user + nice + system + irq + softirq + steal) / 100;
}
const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

/** CPU used by each process during the measurement window, in % of one core. */
class CpuMeter {
  private start = new Map<string, number>();
  private t0 = 0;
  readonly result: Record<string, number> = {};
  /** pid, or "pid/task/tid" for one thread. */
  constructor(private readonly pids: Record<string, number | string | undefined>) {}
  begin(): void {
    this.t0 = performance.now();
    this.start.set('(machine)', machineBusySeconds());
    for (const [k, pid] of Object.entries(this.pids)) if (pid) this.start.set(k, cpuSeconds(pid));
  }
  end(): void {
    const dt = (performance.now() - this.t0) / 1000;
    for (const [k, pid] of Object.entries(this.pids)) {
      const s = this.start.get(k);
      if (pid && s !== undefined) this.result[k] = Math.round(((cpuSeconds(pid) - s) / dt) * 1000) / 10;
    }
    // Everything else running on the machine meanwhile (other jobs compete for the same cores).
    const machine = Math.round(((machineBusySeconds() - this.start.get('(machine)')!) / dt) * 1000) / 10;
    const ours = Object.entries(this.result)
      .filter(([k]) => !k.includes('Thread'))
      .reduce((n, [, v]) => n + v, 0);
    this.result.machine = machine;
    this.result.other = Math.max(0, Math.round((machine - ours) * 10) / 10);
    this.result.cores = availableParallelism();
  }
}

/** Redis commands executed during the window (INFO commandstats deltas; commands run inside Lua scripts included). */
class RedisStats {
  private start: Promise<Map<string, number>> | undefined;
  private stop: Promise<Map<string, number>> | undefined;
  constructor(private readonly redis: Redis) {}
  private async read(): Promise<Map<string, number>> {
    const text = await this.redis.info('commandstats');
    const m = new Map<string, number>();
    for (const line of text.split('\n')) {
      const r = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
      if (r) m.set(r[1]!, Number(r[2]));
    }
    return m;
  }
  begin(): void {
    this.start = this.read();
  }
  end(): void {
    this.stop = this.read();
  }
  /** Calls per message, by command, largest first. */
  async perMessage(messages: number): Promise<Record<string, number>> {
    const [a, b] = await Promise.all([this.start!, this.stop!]);
    const out: [string, number][] = [];
    for (const [k, v] of b) {
      if (k === 'info') continue;
      const d = v - (a.get(k) ?? 0);
      if (d > 0) out.push([k, Math.round((d / Math.max(1, messages)) * 100) / 100]);
    }
    out.sort((x, y) => y[1] - x[1]);
    return Object.fromEntries(out);
  }
}

// ---------------------------------------------------------------- admin API

async function admin(adminPort: number, path: string): Promise<Response> {
  const res = await fetch(`http://${HOST}:${adminPort}${path}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

interface Entry {
  id: string;
  status: string;
  size: number;
}
async function findByControlId(adminPort: number, controlId: string): Promise<Entry | undefined> {
  const body = (await (await admin(adminPort, `/messages?controlId=${encodeURIComponent(controlId)}`)).json()) as {
    messages: Entry[];
  };
  return body.messages[0];
}

/** Jobs waiting, active or delayed in the channels' queues. */
async function queueBacklog(adminPort: number): Promise<number> {
  const channels = (await (await admin(adminPort, '/channels')).json()) as { queue: Record<string, number> }[];
  return channels.reduce(
    (n, c) => n + (c.queue.waiting ?? 0) + (c.queue.active ?? 0) + (c.queue.delayed ?? 0) + (c.queue.prioritized ?? 0),
    0,
  );
}

/** Waits until the channel's queue has nothing waiting or active (the worker caught up). */
async function waitQueueDrained(adminPort: number, timeoutMs = 120_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const backlog = await queueBacklog(adminPort);
    if (backlog === 0) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`queue still holds ${backlog} jobs after ${timeoutMs} ms`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------- processes

function channelYaml(port: number): string {
  return `# generated by bench/run.ts
id: bench
description: benchmark channel (ADT PAM-FR v2.5 and MDM^T02 v2.6)
source:
  type: mllp
  host: ${HOST}
  port: ${port}
  maxMessageSize: 64MiB
  idleTimeoutSeconds: 600
  maxConnections: 256
  defaultCharset: UNICODE UTF-8
  accept:
    - type: ADT
      events: [A01, A04, A08, A28, A31]
      versions: ["2.5"]
    - type: MDM
      events: [T02]
      versions: ["2.6"]
flow: journal
processing:
  concurrency: ${Number(env.BENCH_CONCURRENCY ?? 4)}
`;
}

/** The same ADT feed into the identity store (flow pam, in order). */
function pamChannelYaml(port: number): string {
  return `# generated by bench/run.ts
id: benchpam
description: benchmark channel (ADT PAM-FR v2.5 into the identity store)
source:
  type: mllp
  host: ${HOST}
  port: ${port}
  accept:
    - type: ADT
      events: [A01, A04, A08, A28, A31]
      versions: ["2.5"]
flow: pam
processing:
  concurrency: 1
`;
}

function pipeToStderr(child: ChildProcess, tag: string): void {
  const fwd = (d: Buffer) => {
    for (const line of d.toString('utf8').split('\n')) if (line.trim()) process.stderr.write(`[${tag}] ${line}\n`);
  };
  child.stdout?.on('data', fwd);
  child.stderr?.on('data', fwd);
}

async function stopChild(child: ChildProcess | undefined, what: string, timeoutMs = 20_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => {
    progress(`${what} did not stop within ${timeoutMs} ms: SIGKILL`);
    child.kill('SIGKILL');
  }, timeoutMs);
  await exited;
  clearTimeout(t);
}

async function startBare(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [join(here, 'bare-responder.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[bare] ${d}`));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.once('exit', (c) => reject(new Error(`bare responder exited (${c})`)));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(buf.slice(0, nl)) as { port: number }).port);
    });
  });
  return { child, port };
}

// ---------------------------------------------------------------- measurements

function loadLine(bench: string, r: LoadResult, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    bench,
    connections: CONNECTIONS,
    messageBytes: 1024,
    appendfsync: APPENDFSYNC,
    client: CLIENT,
    messages: r.messages,
    seconds: r.seconds,
    msgPerSec: r.msgPerSec,
    ackLatencyMs: r.ackLatencyMs,
    allAA: r.allAA,
    nonAA: r.nonAA,
    ...extra,
  };
}

async function bigMessage(mllpPort: number, adminPort: number, enginePid: number): Promise<Record<string, unknown>> {
  const controlId = `bench-big-${Date.now()}`;
  const payload = buildBigMdm(controlId, BIG_MIB * MiB);
  const sha = createHash('sha256').update(payload).digest('hex');
  progress(`big_message: ${payload.length} bytes, waiting for the worker backlog to drain first`);
  const drainedMs = await waitQueueDrained(adminPort);
  progress(`big_message: queue drained after ${drainedMs} ms`);
  await sleep(500);

  const rssBeforeKiB = procStatusKiB(enginePid, 'VmRSS');
  resetPeak(enginePid);
  const client = new MllpClient({ host: HOST, port: mllpPort, ackTimeoutMs: 120_000, reconnect: { maxAttempts: 1 } });
  const t0 = performance.now();
  const ack = await client.send(payload);
  const ackLatencyMs = Math.round((performance.now() - t0) * 10) / 10;
  await client.close();
  const peakAtAckKiB = procStatusKiB(enginePid, 'VmHWM');
  const info = extractAck(ack);

  // The worker reads the message back from the journal: include that in the peak.
  let entry: Entry | undefined;
  const deadline = Date.now() + 60_000;
  for (;;) {
    entry = await findByControlId(adminPort, controlId);
    if (entry && ['processed', 'failed', 'dead-lettered'].includes(entry.status)) break;
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  const peakKiB = procStatusKiB(enginePid, 'VmHWM');
  const rssAfterKiB = procStatusKiB(enginePid, 'VmRSS');

  let storedIntact = false;
  let storedBytes: number | undefined;
  if (entry) {
    const raw = Buffer.from(await (await admin(adminPort, `/messages/${entry.id}/raw`)).arrayBuffer());
    storedBytes = raw.length;
    storedIntact = raw.length === payload.length && createHash('sha256').update(raw).digest('hex') === sha;
  }
  const growthKiB = peakKiB - rssBeforeKiB;
  const growthOverSize = Math.round(((growthKiB * 1024) / payload.length) * 100) / 100;
  return {
    bench: 'big_message',
    bytes: payload.length,
    ackLatencyMs,
    ack: info?.code ?? '(none)',
    rssBeforeMiB: mib(rssBeforeKiB),
    peakRssAtAckMiB: mib(peakAtAckKiB),
    peakRssMiB: mib(peakKiB),
    rssAfterMiB: mib(rssAfterKiB),
    growthAtAckMiB: mib(peakAtAckKiB - rssBeforeKiB),
    growthMiB: mib(growthKiB),
    growthOverSize,
    target: BIG_GROWTH_TARGET,
    meetsTarget: growthOverSize < BIG_GROWTH_TARGET,
    journalStatus: entry?.status ?? '(not found)',
    storedBytes,
    storedIntact,
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'pfi-bench-'));
  const channelsDir = join(tmp, 'channels');
  const varDir = join(tmp, 'var');
  mkdirSync(channelsDir);
  mkdirSync(varDir);
  let redis: EmbeddedRedis | undefined;
  let engine: ChildProcess | undefined;
  let workerEngine: ChildProcess | undefined;
  let bare: ChildProcess | undefined;
  let statsRedis: Redis | undefined;
  let sim: DmpSimulator | undefined;
  let mail: MailEnv | undefined;
  let dpi: ConsommateurSimulator | undefined;
  const cleanup = async () => {
    await dpi?.stop().catch(() => {});
    statsRedis?.disconnect();
    await sim?.stop().catch(() => {});
    if (mail) await stopMailEnv().catch(() => {});
    await stopChild(bare, 'bare responder').catch(() => {});
    await stopChild(engine, 'engine').catch(() => {});
    await stopChild(workerEngine, 'worker').catch(() => {});
    await redis?.stop().catch(() => {});
    if (env.BENCH_KEEP === '1') progress(`temp dir kept: ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = () => {
    progress('interrupted, cleaning up');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);

  try {
    const redisDir = join(tmp, 'redis');
    redis = await startEmbeddedRedis({ dir: redisDir, appendfsync: APPENDFSYNC });
    const redisPid = Number(readFileSync(join(redisDir, 'redis.pid'), 'utf8').trim()) || undefined;
    progress(`redis-server ${redis.url} (pid ${redisPid}, appendfsync ${APPENDFSYNC})`);
    statsRedis = new Redis({ path: redis.url, lazyConnect: true, maxRetriesPerRequest: 1 });
    await statsRedis.connect();

    const mllpPort = await freePort();
    const adminPort = await freePort();
    writeFileSync(join(channelsDir, 'bench.yaml'), channelYaml(mllpPort));
    const pamPort = await freePort();
    writeFileSync(join(channelsDir, 'pam.yaml'), pamChannelYaml(pamPort));
    const dmpPort = await freePort();
    if (ONLY.has('dmp')) {
      // The DMP is the simulator, in this process (its CPU is the bench's, not the engine's).
      const pkiDir = join(tmp, 'pki');
      const pki = ensureSimPki(pkiDir);
      sim = await DmpSimulator.start({ tls: { ...pki.server, ca: pki.ca }, sealCertificates: [pki.seal.cert] });
      writeFileSync(join(channelsDir, 'dmp.yaml'), dmpChannelYaml(dmpPort, sim.url, pkiDir));
    }
    const mssPort = await freePort();
    if (ONLY.has('mss') || ONLY.has('intake')) {
      // A real Postfix + Dovecot (the test suite's): mailboxes are the ends of the line.
      mail = await startMailEnv().catch((e: Error) => {
        progress(`MSSanté runs skipped: no mail system (${e.message.split('\n')[0]})`);
        return undefined;
      });
      if (mail && ONLY.has('mss')) writeFileSync(join(channelsDir, 'mss.yaml'), mssChannelYaml(mssPort, mail));
      if (mail && ONLY.has('intake')) {
        dpi = await ConsommateurSimulator.start({ patients: [intakePatient().patient] });
        writeFileSync(join(channelsDir, 'lps.yaml'), intakeChannelYaml(mail, dpi.port));
      }
    }
    const childEnv: NodeJS.ProcessEnv = {
      ...env,
      PFI_HOME: root,
      PFI_REDIS_URL: redis.url,
      PFI_CHANNELS_DIR: channelsDir,
      PFI_VAR_DIR: varDir,
      PFI_ADMIN_HOST: HOST,
      PFI_ADMIN_PORT: String(adminPort),
      PFI_ADMIN_TOKEN: ADMIN_TOKEN,
      PFI_LOG_LEVEL: 'warn',
      PFI_ROLE: env.BENCH_WORKER_PROCESS === '1' ? 'ingest' : (env.BENCH_ENGINE_ROLE ?? 'all'),
    };
    const nodeArgs = (env.BENCH_ENGINE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    engine = spawn(process.execPath, [...nodeArgs, join(root, 'dist/src/cli/main.js'), 'start'], {
      cwd: root,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    pipeToStderr(engine, 'engine');
    if (env.BENCH_WORKER_PROCESS === '1') {
      // Split deployment: this engine only ingests, a second process runs the workers.
      const workerAdmin = await freePort();
      workerEngine = spawn(process.execPath, [join(root, 'dist/src/cli/main.js'), 'start'], {
        cwd: root,
        env: { ...childEnv, PFI_ROLE: 'worker', PFI_ADMIN_PORT: String(workerAdmin) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      pipeToStderr(workerEngine, 'worker');
      await waitForPort(workerAdmin, workerEngine, 'worker engine');
    }
    await waitForPort(mllpPort, engine, 'engine');
    await waitForPort(adminPort, engine, 'engine admin API');
    const enginePid = engine.pid!;
    const rssMiB = mib(procStatusKiB(enginePid, 'VmRSS'));
    progress(`engine pid ${enginePid}: MLLP ${mllpPort}, admin ${adminPort}, RSS ${rssMiB} MiB`);

    // Other jobs on the machine skew every number below: say how busy it was before starting.
    const b0 = machineBusySeconds();
    await sleep(1000);
    const busyBefore = Math.round((machineBusySeconds() - b0) * 1000) / 10;
    progress(`machine CPU busy before the runs: ${busyBefore}% (of ${availableParallelism() * 100}%)`);
    const factory = new AdtFactory(1024);
    let engineRate: number | undefined;
    let bareRate: number | undefined;

    if (ONLY.has('adt')) {
      progress(`adt_ingest: ${CONNECTIONS} connections, ${CLIENT} client, ${WARMUP} s warm-up + ${SECONDS} s`);
      const cpu = new CpuMeter({
        engine: enginePid,
        engineMainThread: `${enginePid}/task/${enginePid}`,
        workerProcess: workerEngine?.pid,
        redis: redisPid,
        client: process.pid,
      });
      const stats = new RedisStats(statsRedis);
      const r = await runLoad({
        host: HOST,
        port: mllpPort,
        connections: CONNECTIONS,
        factory,
        warmupMs: WARMUP * 1000,
        measureMs: SECONDS * 1000,
        client: CLIENT,
        idPrefix: 'bench',
        onMeasureStart: () => {
          cpu.begin();
          stats.begin();
        },
        onMeasureEnd: () => {
          cpu.end();
          stats.end();
        },
      });
      engineRate = r.msgPerSec;
      // Accepted is not processed: how far behind is the worker when the senders stop?
      const backlog = await queueBacklog(adminPort);
      const drainMs = (env.BENCH_ENGINE_ROLE ?? 'all') === 'ingest' ? 0 : await waitQueueDrained(adminPort, 300_000);
      emit(
        loadLine('adt_ingest', r, {
          target: ADT_TARGET_MSG_PER_SEC,
          meetsTarget: r.allAA && r.msgPerSec >= ADT_TARGET_MSG_PER_SEC,
          engineRole: env.BENCH_ENGINE_ROLE ?? 'all',
          cpuPercent: cpu.result,
          engineCpuMsPerMessage: Math.round((((cpu.result.engine ?? 0) * 10) / Math.max(1, r.msgPerSec)) * 1000) / 1000,
          redisCpuMsPerMessage: Math.round((((cpu.result.redis ?? 0) * 10) / Math.max(1, r.msgPerSec)) * 1000) / 1000,
          machineBusyBeforePercent: busyBefore,
          engineRssMiB: mib(procStatusKiB(enginePid, 'VmRSS')),
          redisCallsPerMessage: await stats.perMessage(r.messages),
          queueBacklogAtEnd: backlog,
          drainSeconds: Math.round(drainMs / 100) / 10,
        }),
      );
    }

    if (ONLY.has('pam')) {
      progress(`adt_pam: ${CONNECTIONS} connections into the identity store, ${SECONDS} s`);
      const r = await runLoad({
        host: HOST,
        port: pamPort,
        connections: CONNECTIONS,
        factory,
        warmupMs: WARMUP * 1000,
        measureMs: SECONDS * 1000,
        client: CLIENT,
        idPrefix: 'pam',
      });
      const started = performance.now();
      const drainMs = (env.BENCH_ENGINE_ROLE ?? 'all') === 'ingest' ? 0 : await waitQueueDrained(adminPort, 300_000);
      // Every message sent (warm-up included) updated the store once the queue is empty.
      const storeSeconds = WARMUP + SECONDS + (performance.now() - started) / 1000;
      emit(
        loadLine('adt_pam', r, {
          drainSeconds: Math.round(drainMs / 100) / 10,
          storeUpdatesPerSec: Math.round((r.totalSent / storeSeconds) * 10) / 10,
        }),
      );
    }

    if (ONLY.has('bare')) {
      const b = await startBare();
      bare = b.child;
      progress(`bare_mllp: responder pid ${bare.pid} on ${b.port}`);
      const cpu = new CpuMeter({ bare: bare.pid, client: process.pid });
      const r = await runLoad({
        host: HOST,
        port: b.port,
        connections: CONNECTIONS,
        factory,
        warmupMs: WARMUP * 1000,
        measureMs: SECONDS * 1000,
        client: CLIENT,
        idPrefix: 'bare',
        onMeasureStart: () => cpu.begin(),
        onMeasureEnd: () => cpu.end(),
      });
      bareRate = r.msgPerSec;
      emit(loadLine('bare_mllp', r, { appendfsync: 'n/a', cpuPercent: cpu.result }));
      await stopChild(bare, 'bare responder');
      bare = undefined;
    }
    if (engineRate !== undefined && bareRate) {
      emit({ bench: 'ratio', engineOverBare: Math.round((engineRate / bareRate) * 1000) / 1000 });
    }

    if (ONLY.has('big')) {
      progress(`big_message: ${BIG_MIB} MiB MDM^T02`);
      emit(await bigMessage(mllpPort, adminPort, enginePid));
    }

    if (ONLY.has('interpret')) {
      for (const size of [100 * 1024, 1024 * 1024]) {
        progress(`interpret: ${size / 1024} KiB MDM^T02 with a CDA N1, in process`);
        emit(benchInterpret(size, Math.min(SECONDS, 5)));
      }
    }
    if (ONLY.has('parsers')) {
      progress('parsers: large inputs through the MLLP, ER7, CDA, MTOM and XDM readers, in process');
      for (const l of benchParsers()) emit(l);
    }
    if (ONLY.has('dmp') && sim) {
      const documents = Number(env.BENCH_DMP_DOCS ?? 300);
      progress(`dmp_delivery: ${documents} MDM^T02 with a 100 KiB CDA, MLLP in -> DMP simulator stored`);
      await waitForPort(dmpPort, engine, 'engine DMP channel');
      emit(await benchDmp({ port: dmpPort, sim, documents, connections: 4 }));
    }
    if (ONLY.has('mss') && mail) {
      const mails = Number(env.BENCH_MSS_MAILS ?? 200);
      progress(
        `mssante_delivery: ${mails} MDM^T02 with a 100 KiB CDA, MLLP in -> recipient's mailbox (Postfix, Dovecot)`,
      );
      await waitForPort(mssPort, engine, 'engine MSSanté channel');
      emit(await benchMssante({ port: mssPort, mail, mails, connections: 4 }));
    }
    if (ONLY.has('intake') && mail && dpi) {
      const mails = Number(env.BENCH_INTAKE_MAILS ?? 100);
      progress(`mssante_intake: ${mails} mails with an XDM (100 KiB CDA), mailbox -> CONSOMMATEUR ACK`);
      emit(await benchIntake({ mail, dpi, mails }));
    }
  } finally {
    progress('cleaning up');
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`[bench] harness failure: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
