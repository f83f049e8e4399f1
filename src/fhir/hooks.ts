import type { Logger } from '../log';
import type { StoredVersion, WriteInput, WriteResult } from '../store/types';
import type { FhirRequest, FhirResponse } from './request';

/**
 * The hook points of the request pipeline: every path that reaches the data (interactions, search
 * with its includes, history, operations, Bundle entries) passes them, so a feature (the patient's
 * rules, the audit trail, notifications, subscriptions) plugs in here instead of editing each
 * interaction. See src/fhir/README.md for who calls each point.
 */

/** A write about to be stored, inside the store's atomic section. */
export interface WriteAttempt {
  req: FhirRequest;
  type: string;
  id: string;
  /** the version it replaces (undefined: a create) */
  current: StoredVersion | undefined;
  /** what will be stored: `resource` null is a delete */
  input: WriteInput;
}

/** A write the store has committed. */
export interface CommittedWrite {
  req: FhirRequest;
  type: string;
  id: string;
  result: WriteResult;
}

/** How a request ended: its answer, or the error it is answered with. */
export interface CompletedRequest {
  req: FhirRequest;
  response?: FhirResponse;
  error?: unknown;
  /** milliseconds from its start */
  ms: number;
}

export interface HookConsumer {
  /** who it is, for the logs */
  name: string;
  /** After authentication, before routing (each Bundle entry too): may refuse by throwing a FhirError. */
  requestStart?(req: FhirRequest): void | Promise<void>;
  /**
   * Inside the store's atomic section, after the interaction's own checks: may refuse (throw a
   * FhirError) or return what to store instead. Pure and cheap: it may run again when MongoDB
   * retries a write that lost a race; no I/O.
   */
  beforeWrite?(write: WriteAttempt): WriteInput | void;
  /** Once per committed write (each entry of a transaction, once it committed; never a rolled-back one): side effects only. */
  afterCommit?(write: CommittedWrite): void | Promise<void>;
  /** Before a version leaves the server (read, vread, history, search matches and includes, write answers): the version to show, possibly masked, or undefined to keep it unseen. */
  willShow?(req: FhirRequest, version: StoredVersion): StoredVersion | undefined | Promise<StoredVersion | undefined>;
  /** Once the request's outcome is known, success or failure (each Bundle entry too). */
  requestComplete?(completed: CompletedRequest): void | Promise<void>;
}

export class Hooks {
  private readonly consumers: HookConsumer[] = [];

  constructor(private readonly log?: Logger) {}

  add(consumer: HookConsumer): this {
    this.consumers.push(consumer);
    return this;
  }

  async requestStart(req: FhirRequest): Promise<void> {
    for (const c of this.consumers) await c.requestStart?.(req);
  }

  beforeWrite(write: WriteAttempt): WriteInput {
    let input = write.input;
    for (const c of this.consumers) input = c.beforeWrite?.({ ...write, input }) ?? input;
    return input;
  }

  /** Side effects never fail the write they follow (it is committed): a consumer's error is logged. */
  async afterCommit(write: CommittedWrite): Promise<void> {
    for (const c of this.consumers) {
      try {
        await c.afterCommit?.(write);
      } catch (e) {
        this.log?.error({ hook: c.name, point: 'afterCommit', err: (e as Error)?.name }, 'hook failed');
      }
    }
  }

  /** The versions to show, in order: each consumer may drop or mask each one. */
  async willShow(req: FhirRequest, versions: StoredVersion[]): Promise<StoredVersion[]> {
    const showing = this.consumers.filter((c) => c.willShow);
    if (showing.length === 0 || versions.length === 0) return versions;
    const out: StoredVersion[] = [];
    for (const version of versions) {
      let v: StoredVersion | undefined = version;
      for (const c of showing) {
        v = await c.willShow!(req, v);
        if (!v) break;
      }
      if (v) out.push(v);
    }
    return out;
  }

  /** Whether one version may be shown, and as what. */
  async show(req: FhirRequest, version: StoredVersion): Promise<StoredVersion | undefined> {
    return (await this.willShow(req, [version]))[0];
  }

  async requestComplete(completed: CompletedRequest): Promise<void> {
    for (const c of this.consumers) {
      try {
        await c.requestComplete?.(completed);
      } catch (e) {
        this.log?.error({ hook: c.name, point: 'requestComplete', err: (e as Error)?.name }, 'hook failed');
      }
    }
  }
}
