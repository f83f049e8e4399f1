import { badRequest, FhirError, notFound } from '../outcome';
import { isConfined, visible } from '../policy/access';
import { parseCount } from '../search/parse';
import type { SearchPlan } from '../search/plan';
import { dateRange } from '../search/values';
import { historyBundle } from './bundles';
import type { FhirRequest, FhirResponse, Services } from './context';
import { shownVersion } from './interactions';

const HISTORY_PARAMS = new Set(['_count', '_since', '_cursor', '_format', '_pretty']);

export async function history(svc: Services, req: FhirRequest, type?: string, id?: string): Promise<FhirResponse> {
  let since: number | undefined;
  let cursor: SearchPlan['cursor'];
  let count = svc.config.defaultCount;
  for (const [k, v] of req.query) {
    if (k === '_since') {
      const r = dateRange(v);
      if (!r) throw badRequest(`_since must be an instant such as 2024-01-31T10:00:00Z, got "${v}"`);
      since = r.low;
    } else if (k === '_count') count = parseCount(v, { defaultCount: svc.config.defaultCount, maxCount: svc.config.maxCount });
    else if (k === '_cursor') {
      const m = /^(next|prev):(.+)$/.exec(v);
      if (!m) throw badRequest('_cursor is not a paging position this server issued');
      cursor = { direction: m[1] as 'next' | 'prev', position: m[2] };
    } else if (!HISTORY_PARAMS.has(k) && req.prefer.handling === 'strict') throw new FhirError(400, 'not-supported', `History does not support the parameter "${k}" (Prefer: handling=strict)`);
  }
  if (type && id) {
    const current = await svc.store.read(type, id);
    if (!current) throw notFound(`${type}/${id} is not known`);
    await shownVersion(svc, req, current);
  }
  const page = await svc.store.history({ type, id, since, count, cursor });
  // a confined token sees the versions it may see, each judged on its own content (a page may then
  // hold fewer entries), and no count of the versions it may not see
  if (req.access && isConfined(req.access)) page.items = await visible(svc, req.access, page.items, id ? 'r' : 's', req.baseUrl);
  page.items = await svc.hooks.willShow(req, page.items);
  // the total is only known (and only given) when the first page holds every version; a confined token's, of what it may see
  page.total = !cursor && !page.next ? page.items.length : undefined;
  const self = [req.baseUrl, type, id, '_history'].filter(Boolean).join('/');
  const kept = req.query.filter(([k]) => k === '_since');
  return { status: 200, headers: {}, raw: historyBundle(req.baseUrl, self, kept, count, page) };
}

