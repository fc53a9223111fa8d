/**
 * An MSSanté-like mail system for the tests: a real Postfix (SMTP on 127.0.0.1:25, real DSN) in front of a
 * private Dovecot (IMAP and LMTP on free loopback ports), as in docs/TEST-ENV.md of the shared docs.
 *
 * The vitest global setup (test/global-setup.ts) starts it once per run and hands the MailEnv to the test files
 * through `provide('mail', env)`; the helpers below find it with `inject('mail')` (or, in the process that started
 * it, directly). Needs root and the packages of scripts/setup.sh (postfix, dovecot-imapd, dovecot-lmtpd).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';

export interface MailEnv {
  smtp: { host: '127.0.0.1'; port: 25 };
  imap: { host: '127.0.0.1'; port: number };
  dir: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    mail: MailEnv;
  }
}

export const PASSWORD = 'secret';

/**
 * Every mailbox the test system knows; mail to any other address of DOMAINS is refused at RCPT with 550 5.1.1.
 * Generated once (then pasted) from the ANS examples under shared/reference/ansforge/hl7v2-exemples/ (every .er7 and
 * .hl7 file, recursively): each address of a PRT-15 (`^NET^X.400^<address>` / `^^X.400^<address>`) or OBX, kept as
 * written there (including the ANS's own typos 2770763220829106 and 27707279035121518989, and the capital of
 * hopitalA), plus `<INS>@patient.mssante.fr` for each INS of a PID-3 with authority 1.2.250.1.213.1.4.8/.9/.10/.11
 * (274075176079430, 276037510669380, 277076322082910, 279035121518989), plus our own: the hospital's
 * (pfi@ = the BAL applicative, manual@, dpi@hopital.test; bal-mss@ and bal-flowb@ are the application mailboxes of
 * the engines under test in mssante.test.ts and the flow B tests: an engine's watcher takes every mail of its
 * mailbox), two professionals (pro.test) and the demo patient 280017512345610. Addresses are case-insensitive here
 * as everywhere (Postfix and Dovecot fold them to lower case).
 */
export const MAILBOXES: string[] = [
  '274075176079430@patient.mssante.fr',
  '276037510669380@patient.mssante.fr',
  '27707279035121518989@patient.mssante.fr',
  '2770763220829106@patient.mssante.fr',
  '277076322082910@patient.mssante.fr',
  '279035121518989@patient.mssante.fr',
  '280017512345610@patient.mssante.fr',
  'adam.hoda@test-ci-sis.mssante.fr',
  'bal-flowb2@hopital.test',
  'bal-flowb@hopital.test',
  'bal-mss@hopital.test',
  'dpi@hopital.test',
  'dpi@hopitalA.mssante.fr',
  'dr.durand@pro.test',
  'dr.martin@pro.test',
  'janet.blanc@medecin.mssante.fr',
  'manual@hopital.test',
  'pfi@hopital.test',
  'thomas.eric@medecin.mssante.fr',
];

/** The domains of MAILBOXES: all delivered locally (Postfix virtual mailbox domains). */
export const DOMAINS: string[] = [
  'hopital.test',
  'hopitalA.mssante.fr',
  'medecin.mssante.fr',
  'patient.mssante.fr',
  'pro.test',
  'test-ci-sis.mssante.fr',
];

const START_TIMEOUT_MS = 30_000;
const POSTFIX_LOG = '/var/log/pfi-test-postfix.log';
const MAIL_UID = 8; // Debian's `mail` user and group, which Dovecot delivers as.
const MAIL_GID = 8;

let starting: Promise<MailEnv> | undefined;
let current: MailEnv | undefined;

// ---------------------------------------------------------------------------------------------------------------
// Start / stop

/**
 * Runs a command, bounded in time. Resolves on the command's exit, not on the end of its output. With `logFile`, its
 * stdout and stderr go to that file instead of a pipe: for `dovecot` and `postfix start|reload`, whose daemons inherit
 * them and may keep them open (or write to them) long after we stopped reading.
 */
async function run(
  cmd: string,
  args: string[],
  timeoutMs = 15_000,
  logFile?: string,
): Promise<{ stdout: string; stderr: string }> {
  const out = logFile ? await open(logFile, 'a') : undefined;
  try {
    return await new Promise((ok, fail) => {
      const child = spawn(cmd, args, { stdio: out ? ['ignore', out.fd, out.fd] : ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(1000, timeoutMs));
      const finish = (err: Error | undefined) =>
        setTimeout(async () => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          if (logFile && err) stderr = await readFile(logFile, 'utf8').catch(() => '');
          if (err) fail(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}${stdout}`.trim()));
          else ok({ stdout, stderr });
        }, 20);
      child.on('error', (e) => {
        clearTimeout(timer);
        finish(e);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        finish(
          code === 0
            ? undefined
            : new Error(signal ? `killed by ${signal} (time limit ${timeoutMs} ms)` : `exit code ${code}`),
        );
      });
    });
  } finally {
    await out?.close();
  }
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => ok(port));
    });
  });
}

/** Resolves with the first line the server sends (its greeting) on a fresh connection, rejects if none within ms. */
function greeting(port: number, ms: number): Promise<string> {
  return new Promise((ok, fail) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) fail(err);
      else ok(buf.split('\r\n')[0]!);
    };
    const timer = setTimeout(() => done(new Error(`no greeting on port ${port} within ${ms} ms`)), ms);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\r\n')) done();
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(new Error(`port ${port} closed without a greeting`)));
  });
}

async function waitGreeting(
  what: string,
  port: number,
  expect: RegExp,
  deadline: number,
  diagnose: () => Promise<string>,
): Promise<void> {
  let last = '';
  while (Date.now() < deadline) {
    try {
      const line = await greeting(port, Math.min(2000, Math.max(200, deadline - Date.now())));
      if (expect.test(line)) return;
      last = `unexpected greeting ${JSON.stringify(line)}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(200);
  }
  throw new Error(
    `mail test environment: ${what} did not come up on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s ` +
      `(${last})\n${await diagnose()}`,
  );
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

async function tail(file: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return `--- last lines of ${file}:\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
  } catch {
    return `--- ${file}: absent`;
  }
}

async function postfixRunning(): Promise<boolean> {
  try {
    await run('postfix', ['status'], 10_000);
    return true;
  } catch {
    return false;
  }
}

function dovecotConf(dir: string, imapPort: number, lmtpPort: number): string {
  return `# Written by test/helpers/mail.ts: a private Dovecot for the tests (IMAP + LMTP on loopback).
protocols = imap lmtp
listen = 127.0.0.1
instance_name = pfi-test-${imapPort}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
info_log_path = ${dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
auth_verbose = yes
first_valid_uid = 1
mail_location = maildir:${dir}/mail/%d/%n
mail_max_userip_connections = 200
lmtp_save_to_detail_mailbox = no
passdb {
  driver = passwd-file
  args = username_format=%Lu ${dir}/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=${dir}/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
protocol lmtp {
  auth_username_format = %Lu
}
`;
}

function postfixSettings(dir: string, lmtpPort: number): string[] {
  return [
    'compatibility_level = 3.6',
    'myhostname = mx.pfi.test',
    'mydomain = pfi.test',
    'myorigin = $myhostname',
    'mydestination =',
    'inet_interfaces = loopback-only',
    'inet_protocols = all',
    'mynetworks = 127.0.0.0/8 [::1]/128',
    `virtual_mailbox_domains = ${DOMAINS.map((d) => d.toLowerCase()).join(', ')}`,
    `virtual_mailbox_maps = texthash:${dir}/vmailbox`,
    `virtual_transport = lmtp:inet:127.0.0.1:${lmtpPort}`,
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    'smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination',
    'smtpd_reject_unlisted_recipient = yes',
    // Nothing ever leaves the machine: mail for any other domain bounces at once (a real DSN, Action: failed).
    'default_transport = error:5.1.2 no delivery outside the test domains',
    'relay_transport = error:5.1.2 no delivery outside the test domains',
    'relayhost =',
    'smtp_dns_support_level = disabled',
    'smtpd_peername_lookup = no',
    'smtpd_tls_security_level = none',
    'smtp_tls_security_level = none',
    'alias_maps =',
    'alias_database =',
    'biff = no',
    'append_dot_mydomain = no',
    'readme_directory = no',
    'message_size_limit = 60000000',
    'mailbox_size_limit = 0',
    'virtual_mailbox_limit = 0',
    'queue_run_delay = 5s',
    'minimal_backoff_time = 5s',
    'maximal_backoff_time = 30s',
    'maximal_queue_lifetime = 1h',
    'bounce_queue_lifetime = 1h',
    `maillog_file = ${POSTFIX_LOG}`,
  ];
}

/*
 * One mail system per machine, shared by the vitest runs that overlap in time: Postfix can only be one (port 25),
 * and a run stopping it, or reconfiguring it for its own Dovecot, would break another run in progress. So the state
 * (the env, and the pids of the runs using it) lives in STATE, changed only under LOCK: the first run starts
 * everything, the next ones join, the last one to leave stops it. A run killed before its teardown is forgotten when
 * its pid is found dead; what it left running is reused if healthy, else stopped and started afresh.
 */
const STATE = join(os.tmpdir(), 'pfi-test-mail-env.json');
const LOCK = join(os.tmpdir(), 'pfi-test-mail-env.lock');

interface State {
  env: MailEnv;
  lmtpPort: number;
  users: number[];
}

function alive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withLock<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = 0;
      try {
        holder = Number(await readFile(join(LOCK, 'pid'), 'utf8'));
      } catch {
        /* being created, or left half-made */
      }
      let age: number;
      try {
        age = Date.now() - (await stat(LOCK)).mtimeMs;
      } catch {
        continue;
      }
      if ((holder && !alive(holder)) || (!holder && age > 5000) || age > START_TIMEOUT_MS + 30_000) {
        await rm(LOCK, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`mail test environment: ${LOCK} held by pid ${holder || '?'} for ${Math.round(age / 1000)} s`, {
          cause: e,
        });
      await sleep(100);
    }
  }
  try {
    await writeFile(join(LOCK, 'pid'), String(process.pid));
    return await fn();
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

async function readState(): Promise<State | undefined> {
  try {
    return JSON.parse(await readFile(STATE, 'utf8')) as State;
  } catch {
    return undefined;
  }
}

/** Whether a started environment still works: its Dovecot answers, Postfix runs and still delivers to that Dovecot. */
async function healthy(s: State): Promise<boolean> {
  try {
    if (!(await greeting(s.env.imap.port, 2000)).startsWith('* OK')) return false;
    if (!(await greeting(s.lmtpPort, 2000)).startsWith('220 ')) return false;
    if (!(await greeting(25, 2000)).startsWith('220 mx.pfi.test ')) return false;
    const { stdout } = await run('postconf', ['-h', 'virtual_transport', 'virtual_mailbox_maps'], 5000);
    return (
      stdout.split('\n')[0] === `lmtp:inet:127.0.0.1:${s.lmtpPort}` &&
      stdout.split('\n')[1] === `texthash:${s.env.dir}/vmailbox`
    );
  } catch {
    return false;
  }
}

async function start(): Promise<MailEnv> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  if (process.getuid?.() !== 0)
    throw new Error('mail test environment: must run as root (Postfix on port 25, Dovecot delivering as `mail`)');
  for (const bin of [
    '/usr/sbin/postfix',
    '/usr/sbin/postconf',
    '/usr/sbin/dovecot',
    '/usr/lib/dovecot/lmtp',
    '/usr/lib/dovecot/imap',
  ]) {
    if (!existsSync(bin))
      throw new Error(
        `mail test environment: ${bin} is missing; run scripts/setup.sh (installs postfix dovecot-imapd dovecot-lmtpd)`,
      );
  }
  return withLock(deadline, async () => {
    const old = await readState();
    const others = (old?.users ?? []).filter(alive);
    let ok = old ? await healthy(old) : false;
    // Other runs are using it: look twice before restarting it under them (a busy machine answers slowly).
    for (let i = 0; old && !ok && others.length && i < 3 && Date.now() < deadline - 15_000; i++) {
      await sleep(1000);
      ok = await healthy(old);
    }
    if (old && ok) {
      const users = [...new Set([...others, process.pid])];
      await writeFile(STATE, JSON.stringify({ ...old, users } satisfies State));
      return old.env;
    }
    // Nothing usable: clear what is left (a killed run's Dovecot) and start afresh.
    if (old) await stopAll(old.env);
    await rm(STATE, { force: true });
    const fresh = await startFresh(deadline);
    const users = [...new Set([...others, process.pid])];
    await writeFile(STATE, JSON.stringify({ env: fresh.env, lmtpPort: fresh.lmtpPort, users } satisfies State));
    return fresh.env;
  });
}

async function startFresh(deadline: number): Promise<{ env: MailEnv; lmtpPort: number }> {
  const left = () => Math.max(1000, deadline - Date.now());
  const dir = await mkdtemp(join(os.tmpdir(), 'pfi-mail-'));
  await chmod(dir, 0o755); // Dovecot's processes (mail, dovecot users) must reach the maildirs and the users file.
  await mkdir(join(dir, 'mail'));
  await chown(join(dir, 'mail'), MAIL_UID, MAIL_GID);
  await mkdir(join(dir, 'state'));
  const imapPort = await freePort();
  let lmtpPort = await freePort();
  while (lmtpPort === imapPort) lmtpPort = await freePort();

  const addrs = MAILBOXES.map((a) => a.toLowerCase());
  await writeFile(join(dir, 'users'), addrs.map((a) => `${a}:{PLAIN}${PASSWORD}::::::\n`).join(''), { mode: 0o644 });
  await writeFile(join(dir, 'vmailbox'), addrs.map((a) => `${a} OK\n`).join(''), { mode: 0o644 });
  const conf = join(dir, 'dovecot.conf');
  await writeFile(conf, dovecotConf(dir, imapPort, lmtpPort), { mode: 0o644 });

  const diagnose = async () => [await tail(join(dir, 'dovecot.log')), await tail(POSTFIX_LOG)].join('\n');
  const env: MailEnv = { smtp: { host: '127.0.0.1', port: 25 }, imap: { host: '127.0.0.1', port: imapPort }, dir };
  try {
    await run('dovecot', ['-c', conf], left(), join(dir, 'start.log'));

    // Postfix: one instance per machine (port 25). The Debian package is installed with "No configuration": no main.cf.
    if (!existsSync('/etc/postfix/main.cf')) {
      if (existsSync('/usr/share/postfix/main.cf.debian'))
        await copyFile('/usr/share/postfix/main.cf.debian', '/etc/postfix/main.cf');
      else await writeFile('/etc/postfix/main.cf', '');
    }
    await run('postconf', ['-e', ...postfixSettings(dir, lmtpPort)], left());
    // Dovecot's LMTP announces no DSN: without flags=X (formerly lmtp_assume_final = yes), a NOTIFY=SUCCESS gives
    // "Action: relayed" instead of "delivered", although LMTP is the final delivery.
    await run('postconf', ['-F', 'lmtp/unix/command = lmtp flags=X'], left());
    // Whatever an earlier run left in the queue must not land in this run's mailboxes.
    await run('postsuper', ['-d', 'ALL'], left()).catch(() => undefined);
    await run('postfix', ['check'], left());
    if (await postfixRunning()) {
      await run('postfix', ['reload'], left(), join(dir, 'start.log'));
      await sleep(500); // let the idle smtpd/lmtp processes of the old configuration go away
    } else {
      await run('postfix', ['start'], left(), join(dir, 'start.log'));
    }

    await waitGreeting('Dovecot IMAP', imapPort, /^\* OK/, deadline, diagnose);
    await waitGreeting('Dovecot LMTP', lmtpPort, /^220 /, deadline, diagnose);
    await waitGreeting('Postfix SMTP', 25, /^220 mx\.pfi\.test /, deadline, diagnose);
    if (!(await postfixRunning()))
      throw new Error('mail test environment: `postfix status` says Postfix is not running');
  } catch (e) {
    const err = e as Error;
    if (!/^mail test environment/.test(err.message))
      err.message = `mail test environment: ${err.message}\n${await diagnose()}`;
    await stopAll(env).catch(() => undefined);
    throw err;
  }
  return { env, lmtpPort };
}

/** Stops Postfix and an environment's Dovecot, removes its dir (kept if PFI_KEEP_MAIL_DIR is set). */
async function stopAll(env: MailEnv): Promise<void> {
  if (await postfixRunning()) await run('postfix', ['stop'], 20_000).catch(() => undefined);
  let pid = 0;
  try {
    pid = Number((await readFile(join(env.dir, 'run', 'master.pid'), 'utf8')).trim());
  } catch {
    /* not started */
  }
  if (existsSync(join(env.dir, 'dovecot.conf')))
    await run('dovecot', ['-c', join(env.dir, 'dovecot.conf'), 'stop'], 10_000).catch(() => undefined);
  for (let i = 0; alive(pid) && i < 50; i++) await sleep(100);
  if (!process.env.PFI_KEEP_MAIL_DIR && /\/pfi-mail-[^/]+$/.test(env.dir))
    await rm(env.dir, { recursive: true, force: true });
}

/**
 * Starts the mail system, or joins the one another vitest run of this machine is using. Starting means: a private
 * Dovecot, and Postfix configured with postconf then started (or reloaded if already running). Idempotent per process.
 */
export async function startMailEnv(): Promise<MailEnv> {
  starting ??= start().then(
    (env) => (current = env),
    (e: unknown) => {
      starting = undefined;
      throw e;
    },
  );
  return starting;
}

/** Leaves the mail system; the last run to leave stops Postfix and Dovecot and removes the dir. */
export async function stopMailEnv(): Promise<void> {
  if (!starting) return;
  await starting.catch(() => undefined);
  starting = undefined;
  current = undefined;
  await withLock(Date.now() + START_TIMEOUT_MS, async () => {
    const s = await readState();
    if (!s) return;
    const users = s.users.filter((pid) => pid !== process.pid && alive(pid));
    if (users.length) {
      await writeFile(STATE, JSON.stringify({ ...s, users } satisfies State));
      return;
    }
    await stopAll(s.env);
    await rm(STATE, { force: true });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers for test files

/** The environment: the one this process started, else the one the global setup provided. */
async function mailEnv(): Promise<MailEnv> {
  if (current) return current;
  const { inject } = await import('vitest');
  const env = inject('mail');
  if (!env) throw new Error('mail test environment: not started (no MailEnv provided by test/global-setup.ts)');
  return env;
}

async function withImap<T>(address: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
  const env = await mailEnv();
  const client = new ImapFlow({
    host: env.imap.host,
    port: env.imap.port,
    secure: false,
    doSTARTTLS: false,
    auth: { user: address.toLowerCase(), pass: PASSWORD },
    logger: false,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
  });
  client.on('error', () => undefined); // errors also reject the pending command
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/**
 * Reads a mailbox over IMAP (imapflow): every message of a folder (default INBOX) as raw RFC 5322 source, with uid
 * and flags, in uid order. A folder that does not exist reads as empty.
 */
export async function readMailbox(
  address: string,
  folder = 'INBOX',
): Promise<{ uid: number; source: Buffer; flags: string[] }[]> {
  return withImap(address, async (client) => {
    if (folder.toUpperCase() !== 'INBOX' && !(await client.list()).some((b) => b.path === folder)) return [];
    const box = await client.mailboxOpen(folder, { readOnly: true });
    if (box.exists === 0) return [];
    const msgs = await client.fetchAll('1:*', { uid: true, flags: true, source: true });
    return msgs
      .map((m) => ({ uid: m.uid, source: m.source ?? Buffer.alloc(0), flags: [...(m.flags ?? [])] }))
      .sort((a, b) => a.uid - b.uid);
  });
}

/**
 * Waits until `address`'s folder holds at least `n` (default 1) messages matching `filter` (on the raw source),
 * returns them.
 */
export async function waitForMail(
  address: string,
  filter: (source: string) => boolean,
  opts: { n?: number; timeoutMs?: number; folder?: string } = {},
): Promise<Buffer[]> {
  const n = opts.n ?? 1;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  let seen: number;
  for (;;) {
    const all = await readMailbox(address, opts.folder);
    seen = all.length;
    const hits = all.filter((m) => filter(m.source.toString('latin1'))).map((m) => m.source);
    if (hits.length >= n) return hits;
    if (Date.now() >= deadline) {
      throw new Error(
        `waitForMail: ${address} ${opts.folder ?? 'INBOX'} has ${hits.length} matching message(s) of ${seen} ` +
          `after ${timeoutMs} ms, wanted ${n}`,
      );
    }
    await sleep(250);
  }
}

/**
 * Waits until Postfix's queues (incoming, active, deferred, hold: `postqueue -j`) hold no mail for `address`:
 * every mail Postfix had accepted for it by then is in its mailbox (or bounced). With the sender known to have
 * finished sending, the way to count copies without waiting "long enough" for a late one.
 */
export async function waitForPostfixQueue(address: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const wanted = address.toLowerCase();
  for (;;) {
    const { stdout } = await run('postqueue', ['-j'], 10_000);
    const queued = stdout
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as { queue_name: string; recipients: { address: string }[] })
      .filter((m) => m.recipients.some((r) => r.address.toLowerCase() === wanted));
    if (queued.length === 0) return;
    if (Date.now() >= deadline) {
      const where = queued.map((m) => m.queue_name).join(', ');
      throw new Error(`waitForPostfixQueue: ${queued.length} mail(s) for ${address} in ${where} after ${timeoutMs} ms`);
    }
    await sleep(250);
  }
}

/** Deletes every message of every folder of every mailbox (between tests). */
export async function emptyMailboxes(): Promise<void> {
  await Promise.all(
    MAILBOXES.map((address) =>
      withImap(address, async (client) => {
        for (const box of await client.list()) {
          if (box.flags.has('\\Noselect') || box.flags.has('\\NonExistent')) continue;
          const opened = await client.mailboxOpen(box.path);
          if (opened.exists > 0) await client.messageDelete('1:*');
        }
      }),
    ),
  );
}

/** Sends a raw message through Postfix (127.0.0.1:25) with the given envelope sender and recipients. */
export async function sendRaw(from: string, to: string[], raw: Buffer | string): Promise<void> {
  const env = await mailEnv();
  const transport = nodemailer.createTransport({
    host: env.smtp.host,
    port: env.smtp.port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 10_000,
  });
  try {
    await transport.sendMail({ envelope: { from, to }, raw });
  } finally {
    transport.close();
  }
}

/** A TCP relay in front of a server (Postfix), that a test can cut and restore to play "the mail server is down". */
export class TcpGate {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private closing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly target: { host: string; port: number },
    public readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpGate> {
    const server = await listen((s) => gate.relay(s), 0);
    const gate = new TcpGate(target, (server.address() as net.AddressInfo).port);
    gate.server = server;
    return gate;
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    this.sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Refuses new connections (ECONNREFUSED: nothing listens on the port any more) and destroys the open ones. */
  close(): void {
    const server = this.server;
    this.server = undefined;
    if (server) this.closing = new Promise((ok) => server.close(() => ok()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Accepts connections again, on the same port. */
  async open(): Promise<void> {
    await this.closing;
    if (!this.server) this.server = await listen((s) => this.relay(s), this.port);
  }

  /** Closes for good. */
  async stop(): Promise<void> {
    this.close();
    await this.closing;
  }
}

function listen(onConnection: (s: net.Socket) => void, port: number): Promise<net.Server> {
  return new Promise((ok, fail) => {
    const server = net.createServer(onConnection);
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', fail);
      ok(server);
    });
  });
}
