import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/paths.js';
import { Terminology } from '../xds/terminology.js';
import { resolveFrom } from './channels.js';
let terminology: Terminology | undefined;

/** The operator's terminology ($PFI_HOME/mappings/terminology.json) or the one shipped with the engine. */
export function loadTerminology(): Terminology {
  if (!terminology) {
    const own = resolveFrom('mappings/terminology.json');
    terminology = Terminology.load(existsSync(own) ? own : join(packageRoot(), 'mappings/terminology.json'));
  }
  return terminology;
}
