import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type AppendFsync = 'always' | 'everysec' | 'no';

export interface EmbeddedRedisOptions {
  /** Directory holding the AOF, the pid file and the unix socket. */
  dir: string;
  /** TCP port on 127.0.0.1; when absent Redis listens only on a unix socket in `dir`. */
  port?: number;
  appendfsync?: AppendFsync;
  /** Path of the redis-server binary. */
  binary?: string;
}

export interface EmbeddedRedis {
  /** Connection URL for ioredis (redis://127.0.0.1:port or a unix socket path). */
  url: string;
  /** True when an instance left running by a crashed engine was found and reused. */
  adopted: boolean;
  stop(): Promise<void>;
}

/**
 * Starts (or adopts) a private redis-server for the embedded default and the tests.
 * Durability settings are the engine's promise: AOF with fsync on every write, no eviction
 * (BullMQ loses jobs under eviction), no RDB snapshots.
 */
export async function startEmbeddedRedis(opts: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'redis.sock');
  const pidFile = join(dir, 'redis.pid');
  const url = opts.port ? `redis://127.0.0.1:${opts.port}` : socket;
  const target = opts.port ? { port: opts.port, host: '127.0.0.1' } : { path: socket };

  // After a kill -9 of the engine its Redis child keeps running: reuse it, the data is safe there.
  const previous = readPid(pidFile);
  if (previous && isAlive(previous) && (await ping(target))) {
    return { url, adopted: true, stop: () => shutdown(target, previous) };
  }
  if (!opts.port && existsSync(socket)) rmSync(socket);

  const args = [
    '--bind',
    '127.0.0.1',
    '--port',
    String(opts.port ?? 0),
    '--dir',
    dir,
    '--pidfile',
    pidFile,
    '--appendonly',
    'yes',
    '--appendfsync',
    opts.appendfsync ?? 'always',
    '--maxmemory-policy',
    'noeviction',
    '--save',
    '',
    '--daemonize',
    'no',
    '--logfile',
    join(dir, 'redis.log'),
  ];
  if (!opts.port) args.push('--unixsocket', socket, '--unixsocketperm', '700');
  const binary = opts.binary ?? 'redis-server';
  const child = spawn(binary, args, { stdio: 'ignore', detached: true });
  let exited: string | undefined;
  child.once('error', (e) => (exited = e.message));
  child.once('exit', (code) => (exited ??= `exited with code ${code}`));
  child.unref();

  for (let i = 0; i < 200; i++) {
    if (exited)
      throw new Error(`redis-server did not start (${exited}); is it installed? see ${join(dir, 'redis.log')}`);
    if (await ping(target)) return { url, adopted: false, stop: () => shutdown(target, child.pid) };
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not answer within 10 s; see ${join(dir, 'redis.log')}`);
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

type Target = { port: number; host: string } | { path: string };

/** One raw PING over the wire, so that this module needs no client library. */
function ping(target: Target): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(target as never);
    const timer = setTimeout(() => finish(false), 500);
    function finish(ok: boolean) {
      clearTimeout(timer);
      s.destroy();
      done(ok);
    }
    s.once('error', () => finish(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => finish(d.toString().startsWith('+PONG')));
  });
}

/** SHUTDOWN flushes the AOF; SIGTERM is the fallback. Waits until the process is gone. */
async function shutdown(target: Target, pid: number | undefined): Promise<void> {
  await new Promise<void>((done) => {
    const s = connect(target as never);
    s.once('error', () => done());
    s.once('connect', () => s.end('SHUTDOWN\r\n'));
    s.once('close', () => done());
  });
  for (let i = 0; pid && isAlive(pid) && i < 100; i++) await sleep(50);
  if (pid && isAlive(pid)) process.kill(pid, 'SIGTERM');
}
