import { Agent, request, type ClientRequest } from 'node:http';
import type { Readable } from 'node:stream';
import { CallTimeoutError, MaybeRanError, NodeDownError, WireError, WtdError } from '../errors.js';
import { busyWait } from '../runtime/busy-wait.js';
import { DEFAULT_CONNECTION_LIMITS } from '../security/connection-guard.js';

/** What came back from a request. */
export interface HttpResponse {
  status: number;
  contentType: string;
  retryAfter: string | undefined;
  text: string;
  /** An answer a node's server writes as it is made (its `text` is then empty). */
  stream?: Readable;
}

// One keep-alive agent for every node this program talks to, opening no
// more connections to one of them than a WTD server lets one address hold,
// less the one its stream of calls takes (more requests wait here for a
// socket, within their timeout).
const agent = new Agent({ keepAlive: true, maxSockets: DEFAULT_CONNECTION_LIMITS.maxConnectionsPerSource - 1 });

/** Options of {@link send}. */
export interface SendOptions {
  method?: 'PUT' | 'GET';
  contentType?: string;
  /** Aborting it ends the request with `ERR_NODE_DOWN` (with `atMostOnce`: as that option says). */
  signal?: AbortSignal;
  /**
   * The request runs something on the other side: once it was sent whole, a
   * failure, a timeout or an abort is `ERR_MAYBE_RAN`; before that, a
   * timeout is `ERR_CALL_TIMEOUT`, an abort `ERR_CALL_CANCELLED` and a
   * failure `ERR_NODE_DOWN` (it did not run).
   */
  atMostOnce?: boolean;
  /** Most bytes of the answer read; past them the request fails with `ERR_BAD_REPLY`. Default 16 MiB. */
  maxBytes?: number;
  /** Reads an answer as it comes: see {@link StreamReader}. */
  stream?: StreamReader;
}

/**
 * Told an answer's status and content type as they arrive; when it returns
 * a function, that function gets the answer's bytes as they come (it bounds
 * them itself: `maxBytes` does not apply) and the answer resolves with an
 * empty `text` once they are all in.
 */
export type StreamReader = (status: number, contentType: string) => ((chunk: Buffer) => void) | undefined;

/** The largest answer read by default: well above any batch WTD sends, far below what would hurt. */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Errors that mean a kept-alive socket was closed by the other side before it read our request. */
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE']);

/**
 * Sends `body` to `url` and reads the answer. node:http with a keep-alive
 * agent: about a tenth of a millisecond less per request than fetch, which
 * matters when the whole call should take under one. Fails with
 * `CallTimeoutError` after `timeoutMs` and `NodeDownError` when the node
 * cannot be reached.
 *
 * A request that fails on a reused keep-alive socket before any byte of the
 * answer came back (the server closed that socket, typically because it
 * restarted) is sent again once on a fresh connection: the same bytes, so a
 * callee that did get the first copy refuses the second as a replay, and
 * nothing runs twice.
 */
export function send(url: string, body: string, timeoutMs: number, options: SendOptions = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let req: ClientRequest;
    // Whether the whole request went out (to the OS): from then on, it may have run.
    let written = false;
    const sentWhole = (why: string, cause?: unknown): Error | undefined =>
      options.atMostOnce === true && written
        ? new MaybeRanError(url, why, cause === undefined ? undefined : { cause })
        : undefined;
    const done = (err: Error | undefined, res?: HttpResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', abort);
      if (err) reject(err);
      else resolve(res!);
    };
    const attempt = (fresh: boolean): void => {
      let answered = false;
      req = request(
        url,
        {
          method: options.method ?? 'PUT',
          agent: fresh ? false : agent,
          headers: {
            'content-type': options.contentType ?? 'application/jose',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          let received = 0;
          const most = options.maxBytes ?? MAX_RESPONSE_BYTES;
          const contentType = String(res.headers['content-type'] ?? '');
          const reader = options.stream?.(res.statusCode ?? 0, contentType);
          res.on('data', (c: Buffer) => {
            // A stream's reader keeps no more than it reads at once, and bounds what it takes itself.
            if (reader !== undefined) return reader(c);
            received += c.length;
            if (received <= most) {
              chunks.push(c);
              return;
            }
            // An answer this large is nobody's honest answer: it is not read into memory.
            done(new WireError('ERR_BAD_REPLY', 502, `${url} answered with more than ${most} bytes`));
            sent.destroy();
          });
          res.on('end', () => {
            busyWait.poke();
            done(undefined, {
              status: res.statusCode ?? 0,
              contentType,
              retryAfter: res.headers['retry-after'],
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
          res.on('error', (err) =>
            done(
              sentWhole('the connection failed before the answer was read', err) ??
                new NodeDownError(url, { cause: err }),
            ),
          );
        },
      );
      const sent = req;
      // Any failure to connect, send or read (refused, reset, unknown host) means the node is down for us.
      sent.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        if (!fresh && !answered && sent.reusedSocket && STALE_SOCKET.has(err.code ?? '')) attempt(true);
        else
          done(sentWhole('the connection failed before an answer came', err) ?? new NodeDownError(url, { cause: err }));
      });
      sent.once('finish', () => {
        written = true;
        busyWait.poke();
      });
      sent.end(body);
    };
    const timer = setTimeout(() => {
      done(sentWhole(`no answer came within ${timeoutMs} ms`) ?? new CallTimeoutError(url, timeoutMs));
      req.destroy();
    }, timeoutMs);
    const abort = (): void => {
      const cause = options.signal?.reason;
      done(
        sentWhole('the caller gave it up before an answer came', cause) ??
          (options.atMostOnce === true
            ? new WtdError('ERR_CALL_CANCELLED', `the call to ${url} was given up before it was sent; it did not run`, {
                cause,
              })
            : new NodeDownError(url, { cause })),
      );
      req?.destroy();
    };
    if (options.signal?.aborted) abort();
    else {
      options.signal?.addEventListener('abort', abort, { once: true });
      attempt(false);
    }
  });
}

/** PUTs a JWS (or, with `contentType`, any text) to `url`: {@link send} with method PUT. */
export function put(
  url: string,
  body: string,
  timeoutMs: number,
  contentType = 'application/jose',
): Promise<HttpResponse> {
  return send(url, body, timeoutMs, { contentType });
}
