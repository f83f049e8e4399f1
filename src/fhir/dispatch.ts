import { performance } from 'node:perf_hooks';
import type { FhirRequest, FhirResponse, Services } from './context';
import { route } from './routes';

/**
 * One FHIR request, from the HTTP layer or a Bundle entry: requestStart, the route table
 * (src/fhir/routes.ts), requestComplete with its answer or its error.
 */
export async function dispatch(svc: Services, req: FhirRequest): Promise<FhirResponse> {
  const started = performance.now();
  try {
    await svc.hooks.requestStart(req);
    const response = await route(svc, req, dispatch);
    await svc.hooks.requestComplete({ req, response, ms: performance.now() - started });
    return response;
  } catch (error) {
    await svc.hooks.requestComplete({ req, error, ms: performance.now() - started });
    throw error;
  }
}
