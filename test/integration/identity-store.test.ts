import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { PatientUpdate } from '../../src/identity/pam.js';
import { IdentityStore } from '../../src/identity/store.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { tempDir } from '../helpers/engine.js';

let dir: string;
let redis: EmbeddedRedis;
let r: Redis;
let store: IdentityStore;

beforeAll(async () => {
  dir = tempDir('identity');
  redis = await startEmbeddedRedis({ dir });
  r = new Redis(redis.url);
  store = new IdentityStore(r);
});
afterAll(async () => {
  r?.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const IPP = (id: string) => ({ id, authority: '1.2.250.1.999.1', type: 'PI' });
const INS = { matricule: '279035121518989', oid: '1.2.250.1.213.1.4.10', valid: true };

function update(over: Partial<PatientUpdate>): PatientUpdate {
  return {
    event: 'A08',
    eventTime: '20260101100000',
    ids: [IPP('P1')],
    traits: { birthName: 'DUPONT', givenNames: ['ANNE'], birthDate: '19800101', sex: 'F' },
    attributes: [],
    ...over,
  };
}

describe('identity store', () => {
  test('a qualified INS needs PID-32 = QUAL and a valid key', async () => {
    const p = await store.apply(update({ ids: [IPP('Q1')], ins: INS, reliability: 'QUAL' }));
    expect(p.qualified).toBe(true);
    const bad = await store.apply(update({ ids: [IPP('Q2')], ins: { ...INS, valid: false }, reliability: 'QUAL' }));
    expect(bad.qualified).toBe(false);
    const vali = await store.apply(update({ ids: [IPP('Q3')], ins: INS, reliability: 'VALI' }));
    expect(vali.qualified).toBe(false);
  });

  test('updates received out of order end with the newest state', async () => {
    await store.apply(
      update({
        ids: [IPP('O1')],
        eventTime: '20260105120000',
        traits: { birthName: 'NEWEST', givenNames: [] },
        reliability: 'QUAL',
        ins: INS,
      }),
    );
    const p = await store.apply(
      update({
        ids: [IPP('O1')],
        eventTime: '20260102120000',
        traits: { birthName: 'OLDER', givenNames: [] },
        reliability: 'PROV',
      }),
    );
    expect(p.traits.birthName).toBe('NEWEST');
    expect(p.reliability).toBe('QUAL');
    const h = await store.history(p.id);
    expect(h.at(-1)!.note).toMatch(/older than the one kept/);
  });

  test('A40 merge: the old identifier resolves to the surviving patient, with its stays', async () => {
    const visit = { id: 'V9', authority: '1.2.250.1.999.2', type: 'VN' };
    const old = await store.apply(
      update({ ids: [IPP('M-OLD')], event: 'A01', stay: { visit, admitTime: '20260101080000' } }),
    );
    const survivor = await store.apply(
      update({
        ids: [IPP('M-NEW')],
        event: 'A40',
        eventTime: '20260103000000',
        previousIds: [IPP('M-OLD')],
        ins: INS,
        reliability: 'QUAL',
      }),
    );
    expect(survivor.id).not.toBe(old.id);
    const found = await store.find({ id: 'M-OLD', authority: '1.2.250.1.999.1' });
    expect(found?.id).toBe(survivor.id);
    expect(found?.stays.map((s) => s.visit.id)).toContain('V9');
    expect(found?.qualified).toBe(true);
  });

  test('A47 identifier change: the old identifier still finds the patient, now under its new identifier', async () => {
    const before = await store.apply(
      update({ ids: [IPP('CHG-OLD')], event: 'A28', traits: { birthName: 'MARTIN', givenNames: ['LOU'] } }),
    );
    const after = await store.apply(
      update({
        ids: [IPP('CHG-NEW')],
        event: 'A47',
        eventTime: '20260102000000',
        previousIds: [IPP('CHG-OLD')],
        traits: { birthName: 'MARTIN', givenNames: ['LOU'] },
      }),
    );
    expect((await store.find({ id: 'CHG-OLD', authority: '1.2.250.1.999.1' }))?.id).toBe(after.id);
    expect((await store.find({ id: 'CHG-NEW', authority: '1.2.250.1.999.1' }))?.id).toBe(after.id);
    expect((await store.history(after.id)).at(-1)!.note).toContain(`merged ${before.id}`);
  });

  test('consent kept per patient and per stay, newest first', async () => {
    const visit = { id: 'S1', authority: '1.2.250.1.999.2', type: 'VN' };
    await store.apply(
      update({ ids: [IPP('C1')], eventTime: '20260110000000', stay: { visit }, consent: { feeding: { value: 'IO' } } }),
    );
    const p = await store.apply(
      update({ ids: [IPP('C1')], eventTime: '20260109000000', consent: { feeding: { value: 'INO' } } }),
    );
    expect(p.consent?.feeding?.value).toBe('IO');
    expect(p.stays[0]!.consent?.feeding?.value).toBe('IO');
  });
});

describe('concurrent updates in one process', () => {
  test('applied one after the other: none lost', async () => {
    const visits = Array.from({ length: 20 }, (_, i) => ({ id: `CV${i}`, authority: '1.2.250.1.999.2', type: 'VN' }));
    await Promise.all(
      visits.map((visit, i) =>
        store.apply(
          update({ ids: [IPP('CONC')], eventTime: `202601${String(10 + i).padStart(2, '0')}000000`, stay: { visit } }),
        ),
      ),
    );
    const p = await store.find({ id: 'CONC', authority: '1.2.250.1.999.1' });
    expect(p!.stays.map((s) => s.visit.id).sort()).toEqual(visits.map((v) => v.id).sort());
  });
});
