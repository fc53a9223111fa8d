/**
 * "DMP delivery": documents per second from MLLP in to stored in the DMP simulator (group commit,
 * interpretation, gate, VIHF signature, ITI-41 over HTTPS with MTOM, the simulator's checks), and
 * the latency of each document from its send to its storage.
 */
import { percentile } from './stats.js';
import { MllpClient } from '../src/mllp/client.js';
import { extractAck } from '../src/mllp/correlate.js';
import type { DmpSimulator } from '../src/sim/dmp.js';
import { request } from './interpret.js';

export const DMP_DOC_BYTES = 100 * 1024;

/** The channel the engine child runs for this scenario (certificates of the simulator's PKI). */
export function dmpChannelYaml(port: number, simUrl: string, pki: string): string {
  const source =
    `{ type: mllp, host: 127.0.0.1, port: ${port}, profile: cisis-transmission, ` +
    'accept: [{ type: MDM, events: [T02], versions: ["2.6"] }] }';
  return `id: bench-dmp
flow: transmission
mapping: mappings/transmission.yaml
source: ${source}
processing: { concurrency: 8 }
dmp:
  url: ${simUrl}
  tls: { cert: ${pki}/client.crt, key: ${pki}/client.key, ca: ${pki}/ca.crt }
  seal: { cert: ${pki}/seal.crt, key: ${pki}/seal.key }
  sector: SA01^1.2.250.1.71.4.2.4
  lps: { homologation: BENCH }
  concurrency: 8
`;
}

/** One document at a time on an idle engine: the pipeline's own latency, no queueing. */
async function idleLatency(
  port: number,
  sim: DmpSimulator,
  count: number,
  first: number,
): Promise<{ p50: number; p99: number; max: number }> {
  const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 30_000 });
  const out: number[] = [];
  for (let i = first; i < first + count; i++) {
    const msg = request(DMP_DOC_BYTES, i);
    const t0 = performance.now();
    await client.send(msg);
    while (!sim.documents().some((d) => d.uniqueId.endsWith(`.${i}`))) await new Promise((ok) => setTimeout(ok, 1));
    out.push(performance.now() - t0);
  }
  await client.close();
  out.sort((a, b) => a - b);
  return { p50: Math.round(percentile(out, 50)), p99: Math.round(percentile(out, 99)), max: Math.round(out.at(-1)!) };
}

export async function benchDmp(opts: {
  port: number;
  sim: DmpSimulator;
  documents: number;
  connections: number;
}): Promise<Record<string, unknown>> {
  const idle = await idleLatency(opts.port, opts.sim, 30, 1_000_000);
  opts.sim.reset();
  const messages = Array.from({ length: opts.documents }, (_, i) => request(DMP_DOC_BYTES, i));
  const sentAt = new Map<string, number>();
  const clients = Array.from(
    { length: opts.connections },
    () => new MllpClient({ host: '127.0.0.1', port: opts.port, ackTimeoutMs: 30_000 }),
  );
  let next = 0;
  let notAA = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      for (let i = next++; i < messages.length; i = next++) {
        sentAt.set(`.${i}`, performance.now());
        const ack = extractAck(await c.send(messages[i]!));
        if (ack?.code !== 'AA') notAA++;
      }
    }),
  );
  const ackedAt = performance.now();
  await Promise.all(clients.map((c) => c.close()));
  // Stored times are the simulator's clock (same process): wait until every document is there.
  const storedAt = new Map<string, number>();
  const until = Date.now() + 300_000;
  while (storedAt.size < messages.length && Date.now() < until) {
    for (const d of opts.sim.documents()) {
      const suffix = d.uniqueId.slice(d.uniqueId.lastIndexOf('.'));
      if (!storedAt.has(suffix)) storedAt.set(suffix, performance.now());
    }
    await new Promise((ok) => setTimeout(ok, 5));
  }
  const end = Math.max(...storedAt.values());
  const latencies = [...storedAt.entries()].map(([k, at]) => at - sentAt.get(k)!).sort((a, b) => a - b);
  const seconds = (end - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    bench: 'dmp_delivery',
    documentBytes: DMP_DOC_BYTES,
    messageBytes: messages[0]!.length,
    documents: messages.length,
    stored: storedAt.size,
    notAA,
    connections: opts.connections,
    seconds: Math.round(seconds * 100) / 100,
    documentsPerSec: Math.round((storedAt.size / seconds) * 10) / 10,
    ackedPerSec: Math.round((messages.length / ((ackedAt - t0) / 1000)) * 10) / 10,
    // Under the burst (all documents sent as fast as they are acknowledged): mostly time in the queue.
    latencyMs: {
      p50: Math.round(percentile(latencies, 50)),
      p99: Math.round(percentile(latencies, 99)),
      max: Math.round(latencies.at(-1) ?? 0),
    },
    // One at a time on an idle engine: MLLP in to stored in the DMP.
    idleLatencyMs: idle,
    simulatorRequests: opts.sim.requests().length,
    // The simulator runs in the bench process: its CPU (with the sender's) is not the engine's.
    simulatorAndSenderCpuPercent: Math.round(((cpu.user + cpu.system) / 1e4 / seconds) * 10) / 10,
  };
}
