import type { Parameters } from 'fhir/r4';
import { FhirError, informational, notFound } from '../../outcome';
import { requireAdministrator } from '../../policy/access';
import type { FhirRequest, FhirResponse, Services } from '../context';
import { ReindexRunning, type ReindexJob } from '../../jobs/reindex';
import type { Operation } from './operation';

function jobParameters(job: ReindexJob): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'id', valueString: job.id },
      { name: 'status', valueCode: job.status },
      { name: 'startedAt', valueInstant: job.startedAt },
      ...(job.finishedAt ? [{ name: 'finishedAt', valueInstant: job.finishedAt }] : []),
      { name: 'processed', valueInteger: job.processed },
      { name: 'total', valueInteger: job.total ?? 0 },
      ...job.state.params.map((u) => ({ name: 'searchParameter', valueCanonical: u })),
      ...job.state.rejected.map((r) => ({ name: 'rejected', part: [{ name: 'searchParameter', valueString: r.url }, { name: 'reason', valueString: r.reason }] })),
    ],
  };
}

async function started(svc: Services): Promise<ReindexJob> {
  try {
    return await svc.reindexer!.start();
  } catch (e) {
    if (e instanceof ReindexRunning) throw new FhirError(409, 'conflict', 'A $reindex job is already running; wait for it or cancel it');
    throw e;
  }
}

/** POST $reindex starts a job (202, Content-Location of its status); GET shows it; DELETE cancels it. */
async function reindex(svc: Services, req: FhirRequest, jobId?: string): Promise<FhirResponse> {
  const reindexer = svc.reindexer!;
  if (!jobId) {
    if (req.method !== 'POST') throw new FhirError(405, 'not-supported', '$reindex is started with POST', undefined, { Allow: 'POST' });
    const job = await started(svc);
    const where = `${req.baseUrl}/$reindex/${job.id}`;
    const { params, types, rejected } = job.state;
    const message = params.length
      ? `Reindexing ${job.total} resources of ${types.join(', ')} for ${params.length} search parameter(s); progress at ${where}`
      : `No stored SearchParameter is waiting to be made searchable${rejected.length ? ` (${rejected.length} rejected: see ${where})` : ''}`;
    return { status: 202, headers: { 'Content-Location': where }, body: informational(message) };
  }
  const job = await reindexer.status(jobId);
  if (!job) throw notFound(`No $reindex job ${jobId}`);
  if (req.method === 'GET' || req.method === 'HEAD') return { status: 200, headers: {}, body: jobParameters(job) };
  if (req.method === 'DELETE') {
    if (job.status !== 'running') throw new FhirError(409, 'conflict', `The $reindex job ${jobId} is ${job.status}; only a running job can be cancelled`);
    return { status: 200, headers: {}, body: jobParameters((await reindexer.cancel(jobId))!) };
  }
  throw new FhirError(405, 'not-supported', `${req.method} is not allowed on a $reindex job`, undefined, { Allow: 'GET, DELETE' });
}

export const reindexOperation: Operation = {
  name: 'reindex',
  levels: ['system'],
  methods: ['POST', 'GET', 'HEAD', 'DELETE'],
  subPaths: true,
  definition: '{base}/OperationDefinition/reindex',
  documentation: 'Makes the stored SearchParameter resources searchable: POST starts a background job (202, Content-Location of its progress); GET shows it; DELETE cancels it.',
  permission: (req) => requireAdministrator(req.access, '$reindex'),
  handler: async (svc, req, target) => {
    if (target.rest.length > 1) throw new FhirError(404, 'not-found', `No FHIR interaction at ${req.path.join('/')}`);
    return reindex(svc, req, target.rest[0]);
  },
};
