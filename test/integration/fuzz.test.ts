import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { splitMessages } from '../../src/cli/split.js';
import {
  ackOf,
  channelYaml,
  EXAMPLES,
  frame,
  hl7,
  RawMllp,
  startTestEngine,
  type TestEngine,
} from '../helpers/engine.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ main: channelYaml('main') });
});
afterAll(() => t?.stop());

/** Deterministic pseudo-random numbers, so that a failure can be replayed. */
function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

test('mangled messages: every frame gets exactly one well-formed ACK, the engine keeps serving', async () => {
  const bases = [
    splitMessages(readFileSync(join(EXAMPLES, 'SGL', 'admission.er7')))[0]!,
    Buffer.from(hl7({ controlId: 'FUZZ-BASE' })),
  ];
  const rand = rng(42);
  const c = await RawMllp.open(t.port());
  const n = 300;
  for (let i = 0; i < n; i++) {
    const m = Buffer.from(bases[i % bases.length]!);
    const edits = 1 + Math.floor(rand() * 8);
    for (let k = 0; k < edits; k++) {
      const at = Math.floor(rand() * m.length);
      // Delimiters, escapes, high bytes and random bytes are the interesting ones; 0x0b/0x1c would
      // make another framing test, not a parser one.
      const interesting = '|^~\\&\r\n\x00\xff\xe9';
      const pick = interesting[Math.floor(rand() * interesting.length)]!;
      m[at] = rand() < 0.7 ? pick.charCodeAt(0) : Math.floor(rand() * 256);
      if (m[at] === 0x0b || m[at] === 0x1c) m[at] = 0x20;
    }
    await c.write(frame(m));
  }
  const acks = await c.waitAcks(n, 60_000);
  expect(acks).toHaveLength(n);
  const codes = new Set(acks.map((a) => ackOf(a).code));
  for (const code of codes) expect(['AA', 'AE', 'AR']).toContain(code);
  c.close();
  const ok = await RawMllp.open(t.port());
  await ok.write(frame(hl7({ controlId: 'AFTER-FUZZ' })));
  const [last] = await ok.waitAcks(1);
  expect(ackOf(last!)).toMatchObject({ code: 'AA', controlId: 'AFTER-FUZZ' });
  ok.close();
});
