import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per process, exposed by GET /metrics. Labels carry channel ids and codes, never patient data. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'pfi_' });

export const messagesIn = new Counter({
  name: 'pfi_messages_received_total',
  help: 'HL7 messages received on MLLP sources',
  labelNames: ['channel', 'type'] as const,
  registers: [registry],
});

export const acksOut = new Counter({
  name: 'pfi_acks_sent_total',
  help: 'Acknowledgements sent to senders, by MSA-1 code',
  labelNames: ['channel', 'code'] as const,
  registers: [registry],
});

export const ackLatency = new Histogram({
  name: 'pfi_ack_latency_seconds',
  help: 'From complete frame received to ACK written (includes the durable commit)',
  labelNames: ['channel'] as const,
  buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const messagesOut = new Counter({
  name: 'pfi_messages_processed_total',
  help: 'Messages whose processing ended, by outcome (processed, failed attempt, dead-lettered)',
  labelNames: ['channel', 'outcome'] as const,
  registers: [registry],
});

export const deliveries = new Counter({
  name: 'pfi_deliveries_total',
  help: 'Deliveries to destinations, by outcome',
  labelNames: ['channel', 'destination', 'outcome'] as const,
  registers: [registry],
});

export const mllpDiscarded = new Counter({
  name: 'pfi_mllp_discarded_total',
  help: 'Input that was not a complete MLLP frame: junk bytes between frames, truncated or oversize frames',
  labelNames: ['channel', 'reason'] as const,
  registers: [registry],
});

export const queueDepth = new Gauge({
  name: 'pfi_queue_jobs',
  help: 'Jobs in each channel queue, by state (read at scrape time)',
  labelNames: ['channel', 'state'] as const,
  registers: [registry],
});

export const connections = new Gauge({
  name: 'pfi_mllp_connections',
  help: 'Open MLLP connections per channel',
  labelNames: ['channel'] as const,
  registers: [registry],
});
