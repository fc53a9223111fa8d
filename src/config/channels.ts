import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import AjvModule, { type ErrorObject } from 'ajv';
import { LineCounter, isNode, parseDocument, type Document } from 'yaml';
import type { Hl7Charset } from '../hl7v2/charset.js';
import { packageRoot } from '../util/paths.js';
import { PfiError } from '../errors.js';

export interface AcceptRule {
  type: string;
  events: string[];
  versions: string[];
}

export interface TlsFiles {
  cert: string;
  key: string;
  ca?: string;
  requestClientCert: boolean;
}

export interface MailAuth {
  user: string;
  passwordEnv?: string;
  password?: string;
}

export interface MailTls {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
}

export interface MllpDestination {
  id: string;
  type: 'mllp';
  host: string;
  port: number;
  /** The engine's own CONSOMMATEUR simulator stands in (its address is known once it started). */
  simulator?: 'consommateur';
  patients?: string;
  tls?: MailTls;
  ackTimeoutSeconds: number;
}

/** An MLLP listener (every flow but lps). */
export interface MllpSource {
  type: 'mllp';
  host: string;
  port: number;
  tls?: TlsFiles;
  /** `maxMessageSize` of the file, in bytes. */
  maxMessageBytes: number;
  idleTimeoutSeconds: number;
  maxConnections: number;
  defaultCharset: Hl7Charset;
  accept: AcceptRule[];
  /** Message profile checked at ingest (see the schema). */
  profile: 'none' | 'cisis-transmission';
  /** An accepted message type with an event not in `accept`: refused AR 201, or acknowledged AA and ignored. */
  unknownEvents: 'reject' | 'ignore';
}

/** An application mailbox read over IMAP (flow lps). */
export interface MailboxSource {
  type: 'imap';
  host: string;
  port: number;
  secure: boolean;
  tls?: MailTls;
  auth: MailAuth;
  /** Every mailbox watched: `auth` first, then `accounts`. */
  accounts: MailAuth[];
  doneFolder: string;
  asideFolder: string;
  pollSeconds: number;
  /** `maxMessageSize` of the file, in bytes. */
  maxMessageBytes: number;
}

export interface SmtpConfig {
  host: string;
  port: number;
  secure: boolean;
  requireTls: boolean;
  tls?: MailTls;
  auth?: MailAuth;
}

export interface MssanteConfig {
  from: string;
  smtp: SmtpConfig;
  imap?: {
    host: string;
    port: number;
    secure: boolean;
    tls?: MailTls;
    auth: MailAuth;
    doneFolder: string;
    asideFolder: string;
    pollSeconds: number;
  };
  nil: string;
  bodies: { ps: string; patient: string };
  timeoutSeconds: number;
  attempts: number;
  backoffSeconds: number;
  concurrency: number;
}

export interface DmpConfig {
  /** The engine's own simulator stands in for the DMP (url, tls and seal are then made at start). */
  simulator: boolean;
  url?: string;
  tls?: { cert: string; key: string; ca?: string };
  seal?: { cert: string; key: string };
  sector: string;
  structureId?: string;
  responsible?: { id?: string; name?: string };
  authnContext: string;
  vihfVersion: string;
  lps: { name: string; version: string; homologation: string; id?: string };
  secretConnection?: { code: string; codeSystem: string; displayName?: string };
  delaySeconds: number;
  hold: boolean;
  timeoutSeconds: number;
  attempts: number;
  backoffSeconds: number;
  concurrency: number;
}

export interface IntakeConfig {
  smtp: SmtpConfig;
  manualMailbox?: string;
  noXdm: 'forward' | 'keep';
  parties: {
    sendingApplication: string;
    sendingFacility: string;
    receivingApplication: string;
    receivingFacility: string;
  };
  /** `maxExpandedSize` of the file, in bytes. */
  maxExpandedBytes: number;
}

interface ChannelCommon {
  id: string;
  description?: string;
  enabled: boolean;
  /** The file it came from, for messages. */
  file: string;
  mapping?: string;
  destinations: MllpDestination[];
  /** flow transmission: an INS differing from the store's qualified one is a warning or a refusal. */
  identityCheck: 'warn' | 'reject';
  /** The CREATEUR's listener for business acknowledgements (ZAM). */
  businessAcks?: Omit<MllpDestination, 'id' | 'type'>;
  processing: { concurrency: number; attempts: number; backoffSeconds: number };
}

/** journal, forward, pam: an MLLP source and its flow. */
export interface MllpChannel extends ChannelCommon {
  flow: 'journal' | 'forward' | 'pam';
  source: MllpSource;
}

/** Flow A: transmission requests, delivered to the DMP (`dmp`) and by MSSanté (`mssante`). */
export interface TransmissionChannel extends ChannelCommon {
  flow: 'transmission';
  source: MllpSource;
  mapping: string;
  dmp?: DmpConfig;
  mssante?: MssanteConfig;
}

/** Flow B: documents received in an application mailbox, sent to the DPI (first destination). */
export interface LpsChannel extends ChannelCommon {
  flow: 'lps';
  source: MailboxSource;
  intake: IntakeConfig;
}

/** One channel file, checked, with the schema's defaults: a union by flow (and so by source). */
export type ChannelConfig = MllpChannel | TransmissionChannel | LpsChannel;
export type FlowName = ChannelConfig['flow'];
/** A channel fed by an MLLP listener. */
export type ListenerChannel = MllpChannel | TransmissionChannel;

/** A channel file that cannot be used: says which file, where, and what is wrong. */
export class ChannelConfigError extends PfiError {
  constructor(readonly problems: string[]) {
    super('config', problems.join('\n'));
  }
}

export const CHANNEL_SCHEMA_PATH = 'schemas/channel.schema.json';

const Ajv = AjvModule.default ?? AjvModule;
let validator: ReturnType<InstanceType<typeof Ajv>['compile']> | undefined;

function validate(data: unknown) {
  if (!validator) {
    const schema = JSON.parse(readFileSync(join(packageRoot(), CHANNEL_SCHEMA_PATH), 'utf8'));
    validator = new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile(schema);
  }
  const ok = validator(data);
  return ok ? [] : (validator.errors ?? []);
}

/** Loads and checks every *.yaml / *.yml file of a directory; throws one error listing every problem. */
export function loadChannels(dir: string): ChannelConfig[] {
  if (!existsSync(dir)) throw new ChannelConfigError([`${dir}: channel directory not found`]);
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
  const problems: string[] = [];
  const channels: ChannelConfig[] = [];
  for (const file of files) {
    try {
      channels.push(loadChannelFile(file));
    } catch (e) {
      if (e instanceof ChannelConfigError) problems.push(...e.problems);
      else throw e;
    }
  }
  problems.push(...crossCheck(channels));
  if (problems.length) throw new ChannelConfigError(problems);
  return channels;
}

export function loadChannelFile(file: string): ChannelConfig {
  const shown = displayPath(file);
  const text = readFileSync(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ChannelConfigError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return `${shown}:${pos.line}:${pos.col}: YAML syntax error: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const data = doc.toJS() as Record<string, unknown> | null;
  if (!data || typeof data !== 'object') throw new ChannelConfigError([`${shown}:1:1: empty channel file`]);
  const errors = validate(data);
  if (errors.length) throw new ChannelConfigError(errors.map((e) => describe(e, doc, lines, shown)));
  return normalise(data as unknown as ChannelFile, file, shown);
}

function describe(e: ErrorObject, doc: Document, lines: LineCounter, shown: string): string {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
  // Point at the deepest node that exists in the file (a missing property is reported on its parent).
  let node: unknown;
  for (let n = path.length; n >= 0 && !node; n--) node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
  const range = isNode(node) ? node.range : undefined;
  const pos = range ? lines.linePos(range[0]) : { line: 1, col: 1 };
  const where = e.instancePath || '(top level)';
  let what = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties')
    what = `unknown property "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  if (e.keyword === 'enum') what += `: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return `${shown}:${pos.line}:${pos.col}: ${where} ${what}`;
}

const LPS_NEEDS = 'flow "lps" needs source type imap, an intake section and a destination (the DPI)';

/** The file as the schema checked it, its defaults filled in: sizes still in units, accounts apart. */
type Sized<T, K extends string> = Omit<T, 'maxMessageBytes' | 'maxExpandedBytes' | 'accounts'> & {
  [k in K]: string | number;
};
interface ChannelFile extends Omit<ChannelCommon, 'file'> {
  flow: FlowName;
  source: Sized<MllpSource, 'maxMessageSize'> | (Sized<MailboxSource, 'maxMessageSize'> & { accounts?: MailAuth[] });
  dmp?: Omit<DmpConfig, 'sector' | 'lps'> & { sector?: string; lps?: Partial<DmpConfig['lps']> };
  mssante?: Omit<MssanteConfig, 'nil'> & { nil?: string };
  intake?: Sized<IntakeConfig, 'maxExpandedSize'>;
}

/**
 * The channel as the engine uses it. The schema holds the defaults; what is left here is derived:
 * sizes in bytes, the list of mailboxes, the values that depend on the engine's version or on the
 * DMP simulator.
 */
function normalise(d: ChannelFile, file: string, shown: string): ChannelConfig {
  const { dmp, mssante, intake, ...rest } = d;
  if (d.source.type === 'imap') {
    const { maxMessageSize, accounts, ...mailbox } = d.source;
    if (d.flow !== 'lps') throw new ChannelConfigError([`${shown}: source type imap is only read by flow "lps"`]);
    if (!intake || !d.destinations.length) throw new ChannelConfigError([`${shown}: ${LPS_NEEDS}`]);
    const source = {
      ...mailbox,
      accounts: [mailbox.auth, ...(accounts ?? [])],
      maxMessageBytes: parseSize(maxMessageSize),
    };
    const { maxExpandedSize, ...i } = intake;
    return { ...rest, flow: 'lps', file, source, intake: { ...i, maxExpandedBytes: parseSize(maxExpandedSize) } };
  }
  const { maxMessageSize, ...listener } = d.source;
  const source = { ...listener, maxMessageBytes: parseSize(maxMessageSize) };
  if (d.flow === 'lps') throw new ChannelConfigError([`${shown}: ${LPS_NEEDS}`]);
  if (d.flow === 'transmission') {
    if (!d.mapping)
      throw new ChannelConfigError([
        `${shown}: flow "transmission" needs a mapping file (e.g. mapping: mappings/transmission.yaml)`,
      ]);
    return {
      ...rest,
      flow: 'transmission',
      mapping: d.mapping,
      file,
      source,
      ...(dmp ? { dmp: dmpConfig(dmp) } : {}),
      ...(mssante ? { mssante: { ...mssante, nil: mssante.nil ?? `pfi-engine ${packageVersion()}` } } : {}),
    };
  }
  for (const [name, section] of Object.entries({ dmp, mssante })) {
    if (section) throw new ChannelConfigError([`${shown}: ${name} is only used by flow "transmission"`]);
  }
  return { ...rest, flow: d.flow, file, source };
}

function dmpConfig(d: NonNullable<ChannelFile['dmp']>): DmpConfig {
  const sim = d.simulator === true;
  return {
    ...d,
    simulator: sim,
    // The simulator accepts any JDV_J61 code; SA01 (établissement public de santé) makes a working default.
    sector: d.sector ?? (sim ? 'SA01^1.2.250.1.71.4.2.4' : ''),
    lps: {
      name: d.lps?.name ?? 'pfi-engine',
      version: d.lps?.version ?? packageVersion(),
      homologation: d.lps?.homologation ?? (sim ? 'SIMULATEUR' : ''),
      ...(d.lps?.id ? { id: d.lps.id } : {}),
    },
  };
}

let version: string | undefined;
function packageVersion(): string {
  return (version ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
    .version);
}

const UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

export function parseSize(v: string | number): number {
  if (typeof v === 'number') return v;
  const m = /^([0-9.]+)\s*([A-Za-z]+)$/.exec(v.trim());
  if (!m || !UNITS[m[2]!]) throw new Error(`not a size: ${v}`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

/** Rules that span files, or need the disk. */
function crossCheck(channels: ChannelConfig[]): string[] {
  const problems: string[] = [];
  const ids = new Map<string, string>();
  const ports = new Map<number, string>();
  for (const c of channels) {
    const shown = displayPath(c.file);
    const other = ids.get(c.id);
    if (other) problems.push(`${shown}: channel id "${c.id}" is already used by ${other}`);
    ids.set(c.id, shown);
    if (c.enabled && c.source.type === 'mllp' && c.source.port !== 0) {
      const p = ports.get(c.source.port);
      if (p) problems.push(`${shown}: port ${c.source.port} is already used by ${p}`);
      ports.set(c.source.port, shown);
    }
    const dests = new Set<string>();
    for (const d of c.destinations) {
      if (dests.has(d.id)) problems.push(`${shown}: destination id "${d.id}" appears twice`);
      dests.add(d.id);
    }
    if (c.flow === 'forward' && c.destinations.length === 0)
      problems.push(`${shown}: flow "forward" needs at least one destination`);
    if (c.mapping && !existsSync(resolveFrom(c.mapping)))
      problems.push(`${shown}: mapping file not found: ${c.mapping}`);
    const tls = c.source.type === 'mllp' ? c.source.tls : undefined;
    for (const f of [tls?.cert, tls?.key, tls?.ca]) {
      if (f && !existsSync(resolveFrom(f))) problems.push(`${shown}: TLS file not found: ${f}`);
    }
    if (tls?.requestClientCert && !tls.ca) problems.push(`${shown}: source.tls.requestClientCert needs source.tls.ca`);
    if (c.flow !== 'transmission') continue;
    if (c.dmp) problems.push(...checkDmp(c.dmp, shown));
    for (const a of [c.mssante?.smtp.auth, c.mssante?.imap?.auth]) {
      if (a && !a.password && !a.passwordEnv)
        problems.push(`${shown}: mssante: ${a.user} needs passwordEnv (or password)`);
    }
    for (const t of [c.mssante?.smtp.tls, c.mssante?.imap?.tls]) {
      for (const f of [t?.ca, t?.cert, t?.key])
        if (f && !existsSync(resolveFrom(f))) problems.push(`${shown}: TLS file not found: ${f}`);
    }
  }
  return problems;
}

function checkDmp(d: DmpConfig, shown: string): string[] {
  const problems: string[] = [];
  if (d.simulator && (d.url || d.tls || d.seal))
    problems.push(`${shown}: dmp: give either simulator: true or url, tls and seal, not both`);
  if (!d.simulator) {
    if (!d.url) problems.push(`${shown}: dmp.url is required (or dmp.simulator: true)`);
    if (!d.tls) problems.push(`${shown}: dmp.tls (the structure's client certificate) is required`);
    if (!d.seal)
      problems.push(`${shown}: dmp.seal (the structure's seal certificate, which signs the VIHF) is required`);
    if (!d.sector) problems.push(`${shown}: dmp.sector (Secteur_Activite, code^1.2.250.1.71.4.2.4) is required`);
    if (!d.lps.homologation) problems.push(`${shown}: dmp.lps.homologation (LPS_ID_HOMOLOGATION_DMP) is required`);
  }
  for (const f of [d.tls?.cert, d.tls?.key, d.tls?.ca, d.seal?.cert, d.seal?.key]) {
    if (f && !existsSync(resolveFrom(f))) problems.push(`${shown}: DMP certificate file not found: ${f}`);
  }
  return problems;
}

/** A PEM file named in a channel file (relative to PFI_HOME, see resolveFrom); undefined when not named. */
export function readPem(file: string | undefined): Buffer | undefined {
  return file ? readFileSync(resolveFrom(file)) : undefined;
}

/**
 * Paths in channel files are relative to the project root (PFI_HOME, where channels/ and mappings/
 * live); a file the operator does not have there is taken from the engine's own (bundled mappings).
 */
export function resolveFrom(p: string): string {
  if (isAbsolute(p)) return p;
  const own = resolve(process.env.PFI_HOME ?? process.cwd(), p);
  const bundled = resolve(packageRoot(), p);
  return existsSync(own) || !existsSync(bundled) ? own : bundled;
}

function displayPath(file: string): string {
  const r = relative(process.cwd(), file);
  return r.startsWith('..') ? file : r;
}
