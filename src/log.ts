import pino from 'pino';

/**
 * Structured JSON logs. Callers log identifiers of requests and operations only:
 * never resource content, search values, resource ids or anything else from a person's record.
 */
export function createLogger(level: string): pino.Logger {
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
}

export type Logger = pino.Logger;
