import { Redis, type RedisOptions } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { loadChannels, type ChannelConfig } from './config/channels.js';
import { ChannelRuntime } from './channels/runtime.js';
import { IdentityStore } from './identity/store.js';
import { Journal } from './journal/journal.js';
import { startEmbeddedRedis, type EmbeddedRedis } from './redis/embedded.js';
import { buildAdminApp } from './server/app.js';
import { ensureAdminToken, type Settings } from './settings.js';
import { createLogger, type Logger } from './util/log.js';
import { join } from 'node:path';
import { BusinessAcks } from './acks/business-acks.js';
import { readPem, resolveFrom, type DmpConfig, type MllpDestination } from './config/channels.js';
import { loadTerminology } from './config/terminology.js';
import type { DmpEndpoint } from './dmp/client.js';
import { DmpDelivery } from './dmp/delivery.js';
import { destinationClient } from './channels/clients.js';
import { MssDelivery } from './mssante/delivery.js';
import { RedisKeys } from './redis/keys.js';
import { ConsommateurSimulator } from './sim/consommateur.js';
import { DmpSimulator } from './sim/dmp.js';
import { loadPatients } from './sim/patients.js';
import { ensureSimPki } from './sim/pki.js';
import { systemClock, type Clock } from './util/clock.js';

/** How long a command may wait on Redis before the sender gets AR: the "never hang" bound. */
const REDIS_COMMAND_TIMEOUT_MS = 3000;

export interface Engine {
  settings: Settings;
  channels: ChannelRuntime[];
  journal: Journal;
  app: FastifyInstance;
  redis: Redis;
  log: Logger;
  /** Admin API address. */
  adminUrl: string;
  /** The embedded DMP simulator, when a channel uses it. */
  dmpSimulator?: DmpSimulator;
  stop(): Promise<void>;
}

export interface EngineOptions {
  /** The clock of the rules that depend on time (the DMP deferral); tests move one by hand. */
  clock?: Clock;
}

export async function startEngine(
  settings: Settings,
  log: Logger = createLogger(settings.logLevel),
  opts: EngineOptions = {},
): Promise<Engine> {
  const configs: ChannelConfig[] = loadChannels(settings.channelsDir).filter((c) => c.enabled);
  ensureAdminToken(settings);

  let embedded: EmbeddedRedis | undefined;
  let url = settings.redisUrl;
  if (!url) {
    embedded = await startEmbeddedRedis({ dir: join(settings.varDir, 'redis'), appendfsync: settings.appendfsync });
    url = embedded.url;
    log.info(
      { redis: url, adopted: embedded.adopted, appendfsync: settings.appendfsync },
      embedded.adopted ? 'embedded Redis adopted' : 'embedded Redis started',
    );
  }
  // Two connections. The ingest one fails fast (so that the sender gets AR, not a hang) and carries
  // both the journal and the queues: the group commit relies on their commands staying in order.
  // The workers' one blocks and retries forever.
  const redis = connect(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  });
  const workerRedis = connect(url, { maxRetriesPerRequest: null });
  for (const c of [redis, workerRedis]) c.on('error', (e) => log.debug({ err: e.message }, 'redis connection error'));
  await waitReady(redis);
  await checkDurability(redis, log);

  const retentionMs = settings.retentionDays * 86_400_000;
  const keys = new RedisKeys(settings.redisPrefix);
  const journal = new Journal(redis, { keys, retentionMs });
  const workerJournal = new Journal(workerRedis, { keys, retentionMs });
  // A connection of its own: the store's transactions must not interleave with BullMQ's commands.
  const identityRedis = connect(url, { maxRetriesPerRequest: null });
  identityRedis.on('error', (e) => log.debug({ err: e.message }, 'redis connection error'));
  const identity = new IdentityStore(identityRedis, keys);
  const simulator = configs.some((c) => c.flow === 'transmission' && c.dmp?.simulator)
    ? await startDmpSimulator(settings, log)
    : undefined;
  const consommateurs = await startConsommateurSimulators(configs, log);
  const dmpEndpoint = (d: DmpConfig): DmpEndpoint => {
    const timeoutMs = d.timeoutSeconds * 1000;
    if (d.simulator) {
      const { sim, pki } = simulator!;
      return { url: sim.url, tls: { ...pki.client, ca: pki.ca }, seal: pki.seal, timeoutMs, maxSockets: d.concurrency };
    }
    // The channel check (checkDmp) made sure these files are named and exist.
    return {
      url: d.url!,
      tls: { cert: readPem(d.tls!.cert)!, key: readPem(d.tls!.key)!, ...(d.tls!.ca ? { ca: readPem(d.tls!.ca) } : {}) },
      seal: { cert: readPem(d.seal!.cert)!, key: readPem(d.seal!.key)! },
      timeoutMs,
      maxSockets: d.concurrency,
    };
  };
  const clock = opts.clock ?? systemClock;
  const addressOf = (c: ChannelConfig) => (d: MllpDestination) => consommateurs.get(`${c.id}/${d.id}`) ?? d;
  // Each channel's parts: the CREATEUR's listener for ZAMs, the deliveries its sections ask for.
  const channels = configs.map((c) => {
    const base = {
      queueRedis: redis,
      workerRedis,
      journal,
      workerJournal,
      identity,
      keys,
      log,
      addressOf: addressOf(c),
    };
    if (c.flow !== 'transmission') return new ChannelRuntime(c, base);
    const shared = { queueRedis: redis, workerRedis, journal: workerJournal, keys, log, retentionMs };
    const client = c.businessAcks && destinationClient(c.businessAcks);
    const charset = c.source.defaultCharset;
    const acks =
      client && new BusinessAcks({ ...shared, redis: workerRedis, client, channel: c.id, defaultCharset: charset });
    const dmpDeps = { ...shared, identity, acks, clock, terminology: loadTerminology };
    const dmp = c.dmp && new DmpDelivery(c, c.dmp, dmpEndpoint(c.dmp), dmpDeps);
    const mssante = c.mssante && new MssDelivery(c, c.mssante, { ...shared, acks });
    return new ChannelRuntime(c, { ...base, dmp, mssante, acks });
  });
  const app = await buildAdminApp({ settings, channels, journal, redis, identity, log });

  await app.ready(); // the channels plugin starts listeners and workers here
  const adminUrl = await app.listen({ host: settings.admin.host, port: settings.admin.port });
  log.info(
    {
      admin: adminUrl,
      tokenFile: settings.admin.tokenFile,
      role: settings.role,
      channels: channels.map((c) => c.config.id),
    },
    'PFI engine started',
  );

  const sweeper = setInterval(() => {
    journal.sweep().then(
      (n) => n && log.info({ removed: n }, 'journal retention sweep'),
      (e: Error) => log.warn({ err: e.message }, 'journal retention sweep failed'),
    );
  }, 3600_000);
  sweeper.unref();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      clearInterval(sweeper);
      await app.close();
      // QUIT lets replies still on the wire arrive; a closed socket would reject them unhandled.
      await Promise.all([redis, workerRedis, identityRedis].map((c) => c.quit().catch(() => c.disconnect())));
      await simulator?.sim.stop();
      await consommateurs.stop();
      await embedded?.stop();
      log.info('PFI engine stopped');
    })());
  return { settings, channels, journal, app, redis, log, adminUrl, dmpSimulator: simulator?.sim, stop };
}

/**
 * Destinations that say `simulator: consommateur` get a simulated DPI of their own, on a free local
 * port: its address by `<channel>/<destination>` (the loaded configuration is left as written).
 */
async function startConsommateurSimulators(configs: ChannelConfig[], log: Logger): Promise<SimulatedDpis> {
  const started = new SimulatedDpis();
  for (const c of configs) {
    for (const d of c.destinations) {
      if (d.simulator !== 'consommateur') continue;
      const sim = await ConsommateurSimulator.start({
        patients: d.patients ? loadPatients(resolveFrom(d.patients)) : [],
      });
      started.set(`${c.id}/${d.id}`, { host: '127.0.0.1', port: sim.port, sim });
      log.info({ channel: c.id, destination: d.id, port: sim.port }, 'CONSOMMATEUR simulator started');
    }
  }
  return started;
}

class SimulatedDpis extends Map<string, { host: string; port: number; sim: ConsommateurSimulator }> {
  stop(): Promise<unknown> {
    return Promise.all([...this.values()].map((s) => s.sim.stop()));
  }
}

/**
 * The embedded default's stand-in for the DMP: a strict simulator on a free local port, with its
 * own certificates under var/pki (PFI_DMP_SIMULATOR_PORT fixes the port).
 */
async function startDmpSimulator(settings: Settings, log: Logger) {
  const pki = ensureSimPki(join(settings.varDir, 'pki'));
  const j66 = loadTerminology().data.valueSets.J66 ?? [];
  const sim = await DmpSimulator.start({
    port: settings.dmpSimulatorPort,
    tls: { ...pki.server, ca: pki.ca },
    sealCertificates: [pki.seal.cert],
    valueSets: { typeCodes: new Set(j66.map((c) => `${c.code}|${c.system}`)) },
  });
  log.info({ url: sim.url }, 'DMP simulator started (channels with dmp.simulator: true send to it)');
  return { sim, pki };
}

function connect(url: string, opts: RedisOptions): Redis {
  const base: RedisOptions = { lazyConnect: false, ...opts };
  return /^rediss?:\/\//.test(url) ? new Redis(url, base) : new Redis({ path: url, ...base });
}

async function waitReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((ok, fail) => {
    const t = setTimeout(() => fail(new Error('Redis did not answer within 10 s')), 10_000);
    redis.once('ready', () => {
      clearTimeout(t);
      ok();
    });
  });
}

/** An external Redis that may evict or lose acknowledged messages must be said loudly. */
async function checkDurability(redis: Redis, log: Logger): Promise<void> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const [, aof] = (await redis.config('GET', 'appendonly')) as string[];
    const [, fsync] = (await redis.config('GET', 'appendfsync')) as string[];
    if (policy !== 'noeviction')
      log.error({ policy }, 'Redis maxmemory-policy is not noeviction: queued messages may be evicted');
    if (aof !== 'yes' || fsync !== 'always')
      log.warn(
        { appendonly: aof, appendfsync: fsync },
        'Redis is not configured with appendfsync always: an AA may be lost on a crash',
      );
  } catch {
    log.warn('could not read Redis configuration (CONFIG disabled?): durability settings unchecked');
  }
}
