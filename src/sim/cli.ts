/**
 * `pfi sim dmp ...`: runs the DMP simulator standalone (for trials of the engine without the real DMP).
 * Prints one JSON line when up; stops on SIGINT / SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DmpSimulator, type DmpState } from './dmp.js';

export const SIM_USAGE = `pfi sim dmp --cert server.crt --key server.key --ca ca.crt --seal-cert seal.crt [options]
  --host H                 listen address (default 127.0.0.1)
  --port P                 listen port (default 8443; 0 = any free port)
  --cert, --key            the simulator's server certificate and key (PEM)
  --ca                     CA whose client certificates are accepted (mutual TLS is required)
  --seal-cert              certificate accepted as VIHF signer (repeatable)
  --unknown-patients S     DMP state of a patient never set: open (default), closed or none
  --base-path P            default /si-dmp-server/v2/services
`;

export class SimUsageError extends Error {}

/** --port as a number, or a usage error. */
export function portOption(value: string | undefined): number {
  const port = Number(value);
  if (!/^\d+$/.test(value ?? '') || port > 65535) throw new SimUsageError(`--port ${value}: not a port number`);
  return port;
}

/** Serves until SIGINT / SIGTERM, then stops the simulator (one JSON line says so). */
export function serveUntilSignal(name: string, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((done) => {
    const onSignal = (signal: string) => {
      process.stdout.write(`${JSON.stringify({ msg: `${name} simulator stopping`, signal })}\n`);
      stop().then(done, done);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

function read(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new SimUsageError(`--${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function simCommand(argv: string[]): Promise<void> {
  const [target, ...args] = argv;
  if (target !== 'dmp') throw new SimUsageError(`unknown simulator "${target ?? ''}" (only "dmp")\n\n${SIM_USAGE}`);
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8443' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        'seal-cert': { type: 'string', multiple: true },
        'unknown-patients': { type: 'string', default: 'open' },
        'base-path': { type: 'string' },
      },
    }));
  } catch (e) {
    throw new SimUsageError(`${(e as Error).message}\n\n${SIM_USAGE}`);
  }
  const missing = (['cert', 'key', 'ca', 'seal-cert'] as const).filter((o) => !values[o] || values[o]!.length === 0);
  if (missing.length)
    throw new SimUsageError(
      `missing required option${missing.length > 1 ? 's' : ''}: ${missing.map((o) => `--${o}`).join(', ')}` +
        `\n\n${SIM_USAGE}`,
    );
  const port = portOption(values.port);
  const unknown = values['unknown-patients']!;
  if (!['open', 'closed', 'none'].includes(unknown))
    throw new SimUsageError(`--unknown-patients ${unknown}: expected open, closed or none`);

  const sim = await DmpSimulator.start({
    host: values.host!,
    port,
    tls: { cert: read('cert', values.cert!), key: read('key', values.key!), ca: read('ca', values.ca!) },
    sealCertificates: values['seal-cert']!.map((f) => read('seal-cert', f)),
    unknownPatients: unknown as DmpState,
    ...(values['base-path'] ? { basePath: values['base-path'] } : {}),
  });
  process.stdout.write(`${JSON.stringify({ msg: 'DMP simulator up', url: sim.url })}\n`);
  await serveUntilSignal('DMP', () => sim.stop());
}
