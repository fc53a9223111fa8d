import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AppendFsync } from './redis/embedded.js';

export type Role = 'all' | 'ingest' | 'worker';

/** Engine-wide settings: environment variables (12-factor), channels stay in their YAML files. */
export interface Settings {
  home: string;
  channelsDir: string;
  varDir: string;
  /** Absent: the engine starts its own redis-server under varDir. */
  redisUrl?: string;
  appendfsync: AppendFsync;
  /** Prefix of every Redis key and queue of this engine (src/redis/keys.ts). */
  redisPrefix: string;
  admin: { host: string; port: number; token: string; tokenFile?: string };
  retentionDays: number;
  role: Role;
  /** Port of the embedded DMP simulator (0: any free port). */
  dmpSimulatorPort: number;
  logLevel: string;
}

export const ENV_DOC: Record<string, string> = {
  PFI_HOME: 'project folder holding channels/ and mappings/ (default: current directory)',
  PFI_CHANNELS_DIR: 'channel files (default: $PFI_HOME/channels)',
  PFI_VAR_DIR: 'runtime data of the embedded Redis and the admin token (default: $PFI_HOME/var)',
  PFI_REDIS_URL: 'external Redis (redis://, rediss:// or a unix socket path); unset = embedded redis-server',
  PFI_REDIS_PREFIX:
    'prefix of every Redis key and queue of this engine (default pfi; engines sharing a Redis need their own)',
  PFI_REDIS_APPENDFSYNC: 'embedded Redis AOF fsync policy: always (default), everysec, no',
  PFI_ADMIN_HOST: 'admin API address (default 127.0.0.1)',
  PFI_ADMIN_PORT: 'admin API port (default 8080; 0 = any free port)',
  PFI_ADMIN_TOKEN: 'bearer token of the admin API; unset = read or create $PFI_VAR_DIR/admin-token',
  PFI_RETENTION_DAYS: 'journal retention in days (default 30)',
  PFI_ROLE: 'all (default), ingest (listeners only) or worker (processing only)',
  PFI_LOG_LEVEL: 'pino level (default info)',
  PFI_DMP_SIMULATOR_PORT:
    'port of the embedded DMP simulator (channels with dmp.simulator: true; default any free port)',
};

export function loadSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Settings> = {}): Settings {
  const home = resolve(env.PFI_HOME ?? process.cwd());
  const varDir = resolve(home, env.PFI_VAR_DIR ?? 'var');
  const appendfsync = (env.PFI_REDIS_APPENDFSYNC ?? 'always') as AppendFsync;
  if (!['always', 'everysec', 'no'].includes(appendfsync))
    throw new Error(`PFI_REDIS_APPENDFSYNC must be always, everysec or no (got ${appendfsync})`);
  const role = (env.PFI_ROLE ?? 'all') as Role;
  if (!['all', 'ingest', 'worker'].includes(role))
    throw new Error(`PFI_ROLE must be all, ingest or worker (got ${role})`);
  const s: Settings = {
    home,
    channelsDir: resolve(home, env.PFI_CHANNELS_DIR ?? 'channels'),
    varDir,
    redisUrl: env.PFI_REDIS_URL || undefined,
    appendfsync,
    redisPrefix: env.PFI_REDIS_PREFIX || 'pfi',
    admin: {
      host: env.PFI_ADMIN_HOST ?? '127.0.0.1',
      port: Number(env.PFI_ADMIN_PORT ?? 8080),
      token: env.PFI_ADMIN_TOKEN ?? '',
    },
    retentionDays: Number(env.PFI_RETENTION_DAYS ?? 30),
    role,
    dmpSimulatorPort: Number(env.PFI_DMP_SIMULATOR_PORT ?? 0),
    logLevel: env.PFI_LOG_LEVEL ?? 'info',
    ...overrides,
  };
  if (!/^[A-Za-z0-9_.-]{1,32}$/.test(s.redisPrefix))
    throw new Error('PFI_REDIS_PREFIX: 1 to 32 letters, digits, dots, dashes or underscores');
  if (!(s.retentionDays > 0)) throw new Error('PFI_RETENTION_DAYS must be a positive number');
  if (!Number.isInteger(s.dmpSimulatorPort) || s.dmpSimulatorPort < 0 || s.dmpSimulatorPort > 65535)
    throw new Error('PFI_DMP_SIMULATOR_PORT must be a port number');
  return s;
}

/** No token configured: keep one in var/ (mode 0600) so that the API is never open by default. */
export function ensureAdminToken(s: Settings): void {
  if (s.admin.token) return;
  const file = join(s.varDir, 'admin-token');
  if (!existsSync(file)) {
    mkdirSync(s.varDir, { recursive: true });
    writeFileSync(file, randomBytes(24).toString('base64url') + '\n', { mode: 0o600 });
  }
  s.admin.token = readFileSync(file, 'utf8').trim();
  s.admin.tokenFile = file;
}
