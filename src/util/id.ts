import { randomBytes } from 'node:crypto';

let last = 0;
let seq = 0;
const node = randomBytes(3).toString('hex');

/**
 * Time-ordered unique ids ("lq3x1k2a-0001-9f3a2c"): sortable by reception, unique across
 * processes thanks to the random node part, short enough for logs and URLs.
 */
export function newId(now = Date.now()): string {
  if (now === last) seq++;
  else {
    last = now;
    seq = 0;
  }
  return `${now.toString(36)}-${seq.toString(36).padStart(4, '0')}-${node}`;
}
