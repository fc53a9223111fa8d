#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { ChannelConfigError, loadChannels, resolveFrom } from '../config/channels.js';
import { startEngine } from '../engine.js';
import { MllpClient } from '../mllp/client.js';
import { ENV_DOC, loadSettings, type Role } from '../settings.js';
import { splitMessages } from './split.js';
import { TERMINOLOGY_USAGE, terminologyCommand } from './terminology.js';
import { SIM_USAGE, SimUsageError, simCommand } from '../sim/cli.js';
import { CONSOMMATEUR_USAGE, consommateurCommand } from '../sim/consommateur-cli.js';
import { loadTerminology } from '../config/terminology.js';
import { checkMappingCodes, loadTransmissionMapping } from '../flows/transmission/mapping.js';

const USAGE = `pfi <command> [options]

Commands:
  start                      run the engine (listeners, workers, admin API)
      --role all|ingest|worker   run only part of it (default all, or PFI_ROLE)
  send <file> [--host H] [--port P] [--timeout S]
                             send every ER7 message of a file over MLLP, print the ACKs
                             (exit code 1 if any ACK is not AA)
  validate [--channels DIR]  check channel and mapping files, then exit
  terminology <subcommand>   the NOS code tables (value sets, concept maps) behind the XDS metadata
${TERMINOLOGY_USAGE.split('\n')
  .slice(1)
  .map((l) => '  ' + l)
  .join('\n')}
  sim dmp [options]          a strict DMP simulator (HTTPS, mutual TLS, VIHF checks), for trials
${SIM_USAGE.split('\n')
  .slice(1)
  .map((l) => '  ' + l)
  .join('\n')}
  sim consommateur [options] a DPI (CONSOMMATEUR of Flow B) over MLLP: INS and traits checks, codes 900-906
${CONSOMMATEUR_USAGE.split('\n')
  .slice(1)
  .map((l) => '  ' + l)
  .join('\n')}

Environment:
${Object.entries(ENV_DOC)
  .map(([k, v]) => `  ${k.padEnd(22)} ${v}`)
  .join('\n')}
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case 'send':
      return send(rest);
    case 'validate':
      return validate(rest);
    case 'terminology':
      return terminologyCommand(rest);
    case 'sim':
      try {
        if (rest[0] === 'consommateur') await consommateurCommand(rest.slice(1));
        else await simCommand(rest);
        return 0;
      } catch (e) {
        if (!(e instanceof SimUsageError)) throw e;
        process.stderr.write(`${e.message}\n`);
        return 2;
      }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { role: { type: 'string' } } });
  const settings = loadSettings(process.env, values.role ? { role: values.role as Role } : {});
  let engine;
  try {
    engine = await startEngine(settings);
  } catch (e) {
    if (e instanceof ChannelConfigError) {
      process.stderr.write(`pfi: invalid channel configuration, not starting:\n${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const e = engine;
  // A stray rejection (a library's background call during a Redis outage) must not take the
  // listeners down: log it and keep serving.
  process.on('unhandledRejection', (reason) =>
    e.log.error({ err: String((reason as Error)?.message ?? reason) }, 'unhandled rejection'),
  );
  await new Promise<void>((done) => {
    const onSignal = (sig: string) => {
      e.log.info({ signal: sig }, 'stopping');
      e.stop().then(done, (err: Error) => {
        e.log.error({ err: err.message }, 'error while stopping');
        done();
      });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  return 0;
}

async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '2575' },
      timeout: { type: 'string', default: '30' },
    },
  });
  if (positionals.length !== 1) {
    process.stderr.write('usage: pfi send <file> [--host H] [--port P]\n');
    return 2;
  }
  const messages = splitMessages(readFileSync(positionals[0]!));
  if (!messages.length) {
    process.stderr.write(`${positionals[0]}: no HL7 message found (messages start with MSH)\n`);
    return 1;
  }
  const client = new MllpClient({
    host: values.host!,
    port: Number(values.port),
    ackTimeoutMs: Number(values.timeout) * 1000,
  });
  let allAccepted = true;
  try {
    for (const m of messages) {
      const ack = await client.send(m);
      process.stdout.write(ack.toString('latin1').replace(/\r/g, '\n').trimEnd() + '\n\n');
      if (!/\rMSA\|AA\|/.test('\r' + ack.toString('latin1'))) allAccepted = false;
    }
  } catch (e) {
    process.stderr.write(`pfi send: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
  return allAccepted ? 0 : 1;
}

function validate(args: string[]): number {
  const { values } = parseArgs({ args, options: { channels: { type: 'string' } } });
  const settings = loadSettings();
  const dir = values.channels ?? settings.channelsDir;
  try {
    const channels = loadChannels(dir);
    const problems: string[] = [];
    for (const c of channels) {
      if (!c.mapping) continue;
      const doc = parseDocument(readFileSync(resolveFrom(c.mapping), 'utf8'));
      for (const err of doc.errors) problems.push(`${c.mapping}: ${err.message.split('\n')[0]}`);
      if (doc.errors.length || c.flow !== 'transmission') continue;
      try {
        const mapping = loadTransmissionMapping(resolveFrom(c.mapping));
        for (const p of checkMappingCodes(mapping, loadTerminology())) problems.push(`${c.mapping}: ${p}`);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (problems.length) throw new ChannelConfigError(problems);
    for (const c of channels) {
      process.stdout.write(`ok  ${c.id}  port ${c.source.port}  flow ${c.flow}${c.enabled ? '' : '  (disabled)'}\n`);
    }
    return 0;
  } catch (e) {
    if (!(e instanceof ChannelConfigError)) throw e;
    process.stderr.write(e.message + '\n');
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`pfi: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
