import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../util/paths.js';
import { importNosWithReport, serializeTerminology, Terminology } from '../xds/terminology.js';

export const TERMINOLOGY_USAGE = `pfi terminology <subcommand>

  import <dir> [--out FILE]   import the NOS files of <dir> (SVS XML value sets, FHIR JSON ValueSet,
                              CodeSystem, ConceptMap) into FILE (default mappings/terminology.json)
  check <code> --value-set J07 [--system OID] [--file FILE]
                              is <code> in the value set? (exit code 1 if not)
  class-code <typeCode> [--file FILE]
                              XDS classCode of a typeCode (ASS_X16, then ASS_X04)
  format-code <templateId>... [--media-type application/pdf] [--file FILE]
                              XDS formatCode of a CDA document's templateId roots (ASS_A11)
`;

/** The engine's default terminology, written by `pfi terminology import`. */
export function defaultTerminologyFile(): string {
  return join(packageRoot(), 'mappings', 'terminology.json');
}

/** `pfi terminology ...`; returns the process exit code. */
export async function terminologyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'import':
        return importCommand(rest);
      case 'check':
        return checkCommand(rest);
      case 'class-code':
        return classCodeCommand(rest);
      case 'format-code':
        return formatCodeCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(TERMINOLOGY_USAGE);
        return sub ? 0 : 2;
      default:
        process.stderr.write(`pfi terminology: unknown subcommand "${sub}"\n\n${TERMINOLOGY_USAGE}`);
        return 2;
    }
  } catch (e) {
    process.stderr.write(`pfi terminology: ${(e as Error).message}\n`);
    return 2;
  }
}

function importCommand(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' } } });
  const dir = positionals[0];
  if (!dir || positionals.length > 1) {
    process.stderr.write(`usage: pfi terminology import <dir> [--out FILE]\n`);
    return 2;
  }
  const out = values.out ? resolve(values.out) : defaultTerminologyFile();
  const { data, ignored, warnings } = importNosWithReport(resolve(dir));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, serializeTerminology(data));

  const count = (rec: Record<string, unknown[]>) => Object.values(rec).reduce((n, l) => n + l.length, 0);
  const summary = (rec: Record<string, unknown[]>) =>
    `${Object.keys(rec).length} (${count(rec)} concepts): ${Object.keys(rec).join(' ')}`;
  const lines = [
    `wrote ${out} (data as of ${data.importedAt}, ${data.sources.length} source files)`,
    `  value sets:    ${summary(data.valueSets)}`,
    `  code systems:  ${summary(data.codeSystems)}`,
    `  concept maps:  ${Object.keys(data.conceptMaps).length} (${count(data.conceptMaps)} entries): ${Object.entries(
      data.conceptMaps,
    )
      .map(([k, v]) => `${k}=${v.length}`)
      .join(' ')}`,
    `  files ignored: ${ignored.length}${ignored.map((i) => `\n    ${i.file}: ${i.reason}`).join('')}`,
  ];
  if (warnings.length) lines.push(`  warnings: ${warnings.length}${warnings.map((w) => `\n    ${w}`).join('')}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

function load(file: string | undefined): Terminology {
  return Terminology.load(file ? resolve(file) : defaultTerminologyFile());
}

function checkCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'value-set': { type: 'string' }, system: { type: 'string' }, file: { type: 'string' } },
  });
  const code = positionals[0];
  const vs = values['value-set'];
  if (!code || !vs) {
    process.stderr.write(`usage: pfi terminology check <code> --value-set J07 [--system OID] [--file FILE]\n`);
    return 2;
  }
  const t = load(values.file);
  const c = t.find(vs, code, values.system);
  if (!c) {
    process.stdout.write(`${code}: not in ${vs}\n`);
    return 1;
  }
  process.stdout.write(`${c.code}: in ${vs} (system ${c.system}${c.display ? `, "${c.display}"` : ''})\n`);
  return 0;
}

function classCodeCommand(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { file: { type: 'string' } } });
  const typeCode = positionals[0];
  if (!typeCode) {
    process.stderr.write(`usage: pfi terminology class-code <typeCode> [--file FILE]\n`);
    return 2;
  }
  const c = load(values.file).classCodeFor(typeCode);
  if (!c) {
    process.stdout.write(`${typeCode}: no classCode in ASS_X16 / ASS_X04\n`);
    return 1;
  }
  process.stdout.write(`${typeCode} -> ${c.code} (system ${c.system}${c.display ? `, "${c.display}"` : ''})\n`);
  return 0;
}

function formatCodeCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'media-type': { type: 'string' }, file: { type: 'string' } },
  });
  if (!positionals.length) {
    process.stderr.write(`usage: pfi terminology format-code <templateId>... [--media-type TYPE] [--file FILE]\n`);
    return 2;
  }
  const mediaType = values['media-type'];
  const c = load(values.file).formatCodeFor(positionals, mediaType ? { mediaType } : {});
  if (!c) {
    process.stdout.write(
      `no formatCode in ASS_A11 for ${positionals.join(' ')}${mediaType ? ` (${mediaType})` : ''}\n`,
    );
    return 1;
  }
  process.stdout.write(`${c.code} (system ${c.system}${c.display ? `, "${c.display}"` : ''})\n`);
  return 0;
}
