import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs (JSON lines). Rule for every call site: ids, codes and sizes at info level;
 * never names, INS or document content (those may appear at debug level only, on purpose).
 */
export function createLogger(level = process.env.PFI_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { svc: 'pfi' } });
}
