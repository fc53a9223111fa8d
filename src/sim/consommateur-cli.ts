/**
 * `pfi sim consommateur [--host H] [--port P] [--patients patients.json] [--silent]`: runs the CONSOMMATEUR (DPI)
 * simulator of Flow B standalone. Prints one JSON line when up, one per message received, and stops on SIGINT /
 * SIGTERM. Bad options throw SimUsageError (as `pfi sim dmp` does).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { portOption, serveUntilSignal, SimUsageError } from './cli.js';
import { ConsommateurSimulator, type SimPatient } from './consommateur.js';

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
  const patients = values.patients ? loadPatients(values.patients) : [];

  const sim = await ConsommateurSimulator.start({
    host: values.host!,
    port,
    patients,
    answer: values.silent ? 'silent' : 'normal',
    onReceived: (e) => {
      const line = { msg: 'received', controlId: e.controlId, event: e.event, ack: e.ack || null, conditions: e.conditions, errors: e.errors, texts: e.texts };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    },
  });
  process.stdout.write(`${JSON.stringify({ msg: 'CONSOMMATEUR simulator up', port: sim.port, patients: patients.length })}\n`);
  await serveUntilSignal('CONSOMMATEUR', () => sim.stop());
}

/** Reads and checks the patients file. */
export function loadPatients(file: string): SimPatient[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SimUsageError(`--patients ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const list = Array.isArray(json) ? json : (json as { patients?: unknown } | null)?.patients;
  if (!Array.isArray(list)) throw new SimUsageError(`--patients ${file}: a JSON array of patients (or {"patients": [...]}) expected`);
  return list.map((p, i) => checkPatient(p, `--patients ${file}: patient ${i + 1}`));
}

function checkPatient(p: unknown, where: string): SimPatient {
  const o = (p ?? {}) as Record<string, unknown>;
  const str = (v: unknown, name: string, re?: RegExp): string => {
    if (typeof v !== 'string' || v === '' || (re && !re.test(v))) throw new SimUsageError(`${where}: "${name}" missing or invalid`);
    return v;
  };
  const ins = (o.ins ?? {}) as Record<string, unknown>;
  const out: SimPatient = {
    ins: { matricule: str(ins.matricule, 'ins.matricule'), oid: str(ins.oid, 'ins.oid') },
    birthName: str(o.birthName, 'birthName'),
    givenNames: str(o.givenNames, 'givenNames'),
    birthDate: str(o.birthDate, 'birthDate', /^\d{8}$/),
    sex: str(o.sex, 'sex', /^[MFU]$/) as SimPatient['sex'],
    birthPlaceCode: str(o.birthPlaceCode, 'birthPlaceCode', /^[0-9AB]{5}$/),
  };
  if (o.ipp !== undefined) out.ipp = str(o.ipp, 'ipp');
  return out;
}
