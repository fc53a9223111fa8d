/**
 * `pfi sim consommateur [--host H] [--port P] [--patients patients.json] [--silent]`: runs the CONSOMMATEUR (DPI)
 * simulator of Flow B standalone. Prints one JSON line when up, one per message received, and stops on SIGINT /
 * SIGTERM. Bad options throw SimUsageError (as `pfi sim dmp` does).
 */
import { parseArgs } from 'node:util';
import { portOption, serveUntilSignal, SimUsageError } from './cli.js';
import { ConsommateurSimulator } from './consommateur.js';
import { loadPatients, PatientsFileError } from './patients.js';

export const CONSOMMATEUR_USAGE = `pfi sim consommateur [options]
  --host H                 listen address (default 127.0.0.1)
  --port P                 MLLP listen port (default 6661; 0 = any free port)
  --patients FILE          the DPI's patient base: a JSON array of patients (or {"patients": [...]}), each
                           {"ipp"?, "ins": {"matricule", "oid"}, "birthName", "givenNames" (space-separated),
                            "birthDate" (YYYYMMDD), "sex" (M|F|U), "birthPlaceCode" (INSEE, 99999 abroad)}
  --silent                 never answer (tests of the sender's timeouts)
`;

/** `argv`: the options, with or without the leading "consommateur". */
export async function consommateurCommand(argv: string[]): Promise<void> {
  const args = argv[0] === 'consommateur' ? argv.slice(1) : argv;
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '6661' },
        patients: { type: 'string' },
        silent: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    throw new SimUsageError(`${(e as Error).message}\n\n${CONSOMMATEUR_USAGE}`);
  }
  const port = portOption(values.port);
  let patients;
  try {
    patients = values.patients ? loadPatients(values.patients) : [];
  } catch (e) {
    if (e instanceof PatientsFileError) throw new SimUsageError(`--patients ${e.message}`);
    throw e;
  }

  const sim = await ConsommateurSimulator.start({
    host: values.host!,
    port,
    patients,
    answer: values.silent ? 'silent' : 'normal',
    onReceived: (e) => {
      const line = {
        msg: 'received',
        controlId: e.controlId,
        event: e.event,
        ack: e.ack || null,
        conditions: e.conditions,
        errors: e.errors,
        texts: e.texts,
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    },
  });
  process.stdout.write(
    `${JSON.stringify({ msg: 'CONSOMMATEUR simulator up', port: sim.port, patients: patients.length })}\n`,
  );
  await serveUntilSignal('CONSOMMATEUR', () => sim.stop());
}
