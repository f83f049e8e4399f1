/** One timed HTTP load with autocannon's programmatic API. */
import { authHeaders } from './auth';
import autocannon from 'autocannon';

export interface Figure {
  label: string;
  requestsPerSec: number;
  p50: number;
  p99: number;
  /** mean latency in ms (autocannon's average, not rounded to whole ms like the percentiles) */
  mean: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** status code -> count, for the codes that are not 2xx */
  otherStatuses: Record<string, number>;
  seconds: number;
}

export interface Load {
  label: string;
  /** origin, e.g. http://127.0.0.1:8080 */
  origin: string;
  method: 'GET' | 'POST' | 'PUT';
  /** per request: the path (with query) and, for writes, the body */
  next: () => { path: string; body?: string };
  seconds: number;
  connections: number;
  /** called with every response (status and body), e.g. to check what a search matched */
  onResponse?: (status: number, body: string) => void;
}

export async function measure(load: Load): Promise<Figure> {
  const headers: Record<string, string> = { accept: 'application/fhir+json', ...authHeaders() };
  if (load.method !== 'GET') headers['content-type'] = 'application/fhir+json';
  const result = await autocannon({
    url: load.origin,
    connections: load.connections,
    duration: load.seconds,
    requests: [
      {
        method: load.method,
        setupRequest: (req) => {
          const n = load.next();
          req.path = n.path;
          req.headers = headers;
          if (n.body !== undefined) req.body = n.body;
          return req;
        },
        ...(load.onResponse ? { onResponse: (status: number, body: string) => load.onResponse!(status, body) } : {}),
      },
    ],
  });
  const otherStatuses: Record<string, number> = {};
  for (const [code, s] of Object.entries(result.statusCodeStats ?? {})) {
    if (!code.startsWith('2')) otherStatuses[code] = (s as { count?: number }).count ?? 0;
  }
  return {
    label: load.label,
    requestsPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    mean: result.latency.average,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    otherStatuses,
    seconds: result.duration,
  };
}
