import supertest from 'supertest';
import type { Express } from 'express';
import { HOST } from './auth';

/**
 * A browser over HTTP for flows that cross servers: the in-process app (reached as http://fhir.test,
 * through supertest) and real servers on loopback (reached by their URL). Each origin keeps its own
 * cookies, as a browser's would (the hosts differ). `go` follows redirects and stops at the first
 * page or at a redirect leaving the known origins (the app's redirect URI).
 */
export class Browser {
  private readonly agents = new Map<string, ReturnType<typeof supertest.agent>>();
  /** the last page shown */
  page: { url: URL; status: number; text: string } | undefined;

  constructor(private readonly app: Express, private readonly others: string[] = []) {}

  private agentFor(url: URL) {
    const key = url.origin;
    let a = this.agents.get(key);
    if (!a) {
      a = url.host === HOST ? supertest.agent(this.app) : supertest.agent(url.origin);
      this.agents.set(key, a);
    }
    return a;
  }

  private known(url: URL): boolean {
    return url.host === HOST || this.others.some((o) => new URL(o).origin === url.origin);
  }

  private send(url: URL, method: 'GET' | 'POST', form?: string) {
    const agent = this.agentFor(url);
    const path = url.pathname + url.search;
    let t = method === 'GET' ? agent.get(path) : agent.post(path).type('form').send(form ?? '');
    if (url.host === HOST) t = t.set('Host', HOST);
    return t;
  }

  /** Loads `url` and follows redirects; returns the URL that left the known origins, if any. */
  async go(href: string, method: 'GET' | 'POST' = 'GET', form?: string): Promise<URL | undefined> {
    let url = new URL(href, this.page?.url ?? `http://${HOST}`);
    let res = await this.send(url, method, form);
    for (let i = 0; i < 20 && [301, 302, 303, 307].includes(res.status); i++) {
      const next = new URL(res.headers.location, url);
      if (!this.known(next)) return next;
      url = next;
      res = await this.send(url, 'GET');
    }
    this.page = { url, status: res.status, text: res.text };
    return undefined;
  }

  /** Submits the page's first form (or the first whose action matches `which`) with its hidden fields and `fields`. */
  async submit(fields: Record<string, string | string[]>, which?: RegExp): Promise<URL | undefined> {
    const forms = [...this.page!.text.matchAll(/<form method="post" action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)].map((m) => ({ action: unescape(m[1]), html: m[2] }));
    const chosen = forms.find((f) => !which || which.test(f.action));
    if (!chosen) throw new Error(`no such form on ${this.page!.url}: ${this.page!.text.slice(0, 300)}`);
    const { action, html } = chosen;
    const body = new URLSearchParams();
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) if (m[1] !== 'scope') body.append(m[1], unescape(m[2]));
    for (const [k, v] of Object.entries(fields)) for (const x of ([] as string[]).concat(v)) body.append(k, x);
    return this.go(action, 'POST', body.toString());
  }
}

const unescape = (s: string) => s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');

/** The scopes a consent page offers: its checkboxes and the required ones it states (hidden fields). */
export function consentScopes(html: string): string[] {
  return [...html.matchAll(/(?:type="checkbox" id="[^"]+"|type="hidden") name="scope" value="([^"]+)"/g)].map((m) => unescape(m[1]));
}
