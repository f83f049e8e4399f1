import type { ClientRegistry } from './registry';

/** The origin (scheme, host, port) of a URL; undefined for what does not parse. */
export function originOf(url: string): string | undefined {
  try {
    const o = new URL(url).origin;
    return o === 'null' ? undefined : o;
  } catch {
    return undefined;
  }
}

/**
 * The origins of browser apps: those of the redirect URIs of the clients that are not suspended.
 * Recomputed at most every 10 s (registrations are rare, requests are not).
 */
export class AppOrigins {
  private origins: { at: number; set: Promise<Set<string>> } | undefined;

  constructor(private readonly clients: ClientRegistry) {}

  async has(origin: string): Promise<boolean> {
    if (!this.origins || Date.now() - this.origins.at > 10_000) {
      const set = this.clients.list().then((all) => new Set(all.filter((c) => c.status !== 'suspended').flatMap((c) => c.redirectUris.map(originOf)).filter((o): o is string => o !== undefined)));
      this.origins = { at: Date.now(), set };
      set.catch(() => (this.origins = undefined));
    }
    return (await this.origins.set).has(origin);
  }
}
