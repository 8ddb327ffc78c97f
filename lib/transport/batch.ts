import { RateLimitedError, WireError } from '../errors.js';
import { isErrorCode } from '../error-codes.js';
import type { HttpResponse } from './http-client.js';
import { refusalFrom } from './refusals.js';

/**
 * Batches: casts, pid messages and monitor signals to one node that leave
 * in the same turn of the event loop travel as one request (`PUT /batch`,
 * in a session only), in the order they were sent, each checked and run on
 * the other side as it would be on its own.
 * @module
 */

/** Most items in one batch. */
export const BATCH_MAX_ITEMS = 100;
/**
 * Most bytes of items (as JSON, UTF-8) in one batch: sealed (base64url, a
 * third more), a batch this size stays well inside a node's default body
 * limit (64 KiB). A larger item travels in a batch of its own.
 */
export const BATCH_MAX_BYTES = 32 * 1024;

/** One request of a batch: where it goes and what it carries. */
export interface BatchEntry {
  path: string;
  body: unknown;
  /** Set for a cast (`PUT /apply/...`): a call would wait for a reply, and travels on its own. */
  cast?: true;
  mission?: string;
}

/** What became of one item: its status, and the refusal when it was refused. */
export interface BatchResult {
  status: number;
  code?: string;
  message?: string;
  /** For `ERR_RATE_LIMITED`: when to try again, in s. */
  retryAfter?: number;
}

/** A batch's items, as the body of `PUT /batch` carries them (`ERR_BAD_ARGUMENTS` for another shape). */
export function parseBatch(body: unknown): BatchEntry[] {
  const items = (body as { items?: unknown } | null)?.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > BATCH_MAX_ITEMS) {
    throw new WireError('ERR_BAD_ARGUMENTS', 400, `a batch carries { items: [...] }, 1 to ${BATCH_MAX_ITEMS} of them`);
  }
  for (const item of items as Partial<BatchEntry>[]) {
    if (item === null || typeof item !== 'object' || typeof item.path !== 'string') {
      throw new WireError('ERR_BAD_ARGUMENTS', 400, 'each item of a batch carries { path, body }');
    }
  }
  return items as BatchEntry[];
}

/** The refusal an item's result stands for, as a caller reads it (undefined when it was taken). */
export function itemRefusal(result: BatchResult): WireError | undefined {
  if (result.status < 300) return undefined;
  if (result.status === 429 || result.code === 'ERR_RATE_LIMITED') {
    return new RateLimitedError(Number(result.retryAfter) > 0 ? Number(result.retryAfter) : 1);
  }
  const code = isErrorCode(result.code) ? result.code : 'ERR_REMOTE_REFUSED';
  return new WireError(code, result.status, String(result.message ?? `the node answered ${result.status}`));
}

/** `results` as the answer to a batch of `n` items carries them: one per item (`ERR_BAD_REPLY` otherwise). */
export function checkResults(results: unknown, n: number): BatchResult[] {
  if (!Array.isArray(results) || results.length !== n || results.some((r) => !Number.isInteger(r?.status))) {
    throw new WireError('ERR_BAD_REPLY', 502, `the answer to a batch of ${n} carries no result for each`);
  }
  return results as BatchResult[];
}

/**
 * The results of a batch of `n` items from an answer in JSON (a batch of
 * messages sent back to a grantee, whose answer only says what to log); a
 * refusal of the whole batch throws it.
 */
export function batchResults(res: HttpResponse, n: number): BatchResult[] {
  if (res.status !== 200 || !res.contentType.startsWith('application/json')) throw refusalFrom(res);
  let results: unknown;
  try {
    results = (JSON.parse(res.text) as { results?: unknown }).results;
  } catch {
    results = undefined;
  }
  return checkResults(results, n);
}

interface Pending {
  entry: BatchEntry;
  bytes: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Collects what leaves for one node in one turn of the event loop and sends
 * it as batches, one at a time, in order: what is added while a batch is on
 * its way goes in the next. Each item's promise says what became of it.
 */
export class Batcher {
  readonly #send: (entries: BatchEntry[]) => Promise<BatchResult[]>;
  #pending: Pending[] = [];
  #scheduled = false;
  #sending = false;
  #closed = false;
  #idle: (() => void)[] = [];

  /** `send` sends one batch and resolves with one result per item (or rejects: every item fails so). */
  constructor(send: (entries: BatchEntry[]) => Promise<BatchResult[]>) {
    this.#send = send;
  }

  /** Queues `entry` for the next batch; resolves once the other node took it, rejects with its refusal. */
  add(entry: BatchEntry): Promise<void> {
    if (this.#closed) return Promise.reject(new WireError('ERR_UNKNOWN_KEY', 401, 'this connection is closed'));
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ entry, bytes: Buffer.byteLength(JSON.stringify(entry)), resolve, reject });
      if (!this.#scheduled && !this.#sending) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          void this.#drain();
        });
      }
    });
  }

  /** How many items wait or travel. */
  get size(): number {
    return this.#pending.length;
  }

  /** Resolves once nothing waits or travels. */
  onIdle(): Promise<void> {
    if (this.#pending.length === 0 && !this.#sending) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Fails what waits: nothing more is sent. */
  close(): void {
    this.#closed = true;
    const left = this.#pending;
    this.#pending = [];
    for (const p of left) p.reject(new WireError('ERR_UNKNOWN_KEY', 401, 'this connection is closed'));
    this.#settled();
  }

  async #drain(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      while (this.#pending.length > 0) {
        const batch = this.#next();
        let results: BatchResult[];
        try {
          results = await this.#send(batch.map((p) => p.entry));
        } catch (err) {
          for (const p of batch) p.reject(err as Error);
          continue;
        }
        batch.forEach((p, i) => {
          const refusal = itemRefusal(results[i]!);
          if (refusal === undefined) p.resolve();
          else p.reject(refusal);
        });
      }
    } finally {
      this.#sending = false;
      this.#settled();
    }
  }

  /** The oldest items that fit in one batch (at least one). */
  #next(): Pending[] {
    let n = 0;
    let bytes = 0;
    while (n < this.#pending.length && n < BATCH_MAX_ITEMS) {
      const b = this.#pending[n]!.bytes;
      if (n > 0 && bytes + b > BATCH_MAX_BYTES) break;
      bytes += b;
      n++;
    }
    return this.#pending.splice(0, n);
  }

  #settled(): void {
    if (this.#pending.length > 0 || this.#sending) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }
}
