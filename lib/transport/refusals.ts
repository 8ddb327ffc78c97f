import { isErrorCode } from '../error-codes.js';
import { ProxyRefusal, RateLimitedError, WireError, WtdError } from '../errors.js';
import type { HttpResponse } from './http-client.js';

/**
 * A refusal both ways: the answer a server gives for a {@link WireError}
 * (JSON `{ error: { code, message } }`, `Retry-After` when rate limited, no
 * stack trace), and the error a caller reads back from such an answer, of
 * the same class and code, whether it came straight or through a proxy.
 * @module
 */

/** The answer for a refusal. */
export function refusalResponse(err: WireError): HttpResponse {
  return {
    status: err.status,
    contentType: 'application/json',
    retryAfter: err instanceof RateLimitedError ? String(err.retryAfterS) : undefined,
    text: JSON.stringify({ error: { code: err.code, message: err.message } }),
  };
}

/**
 * The error a refusal stands for: a {@link RateLimitedError} for 429 (with
 * `retryAfterS`), a {@link ProxyRefusal} for the proxy's own codes, else a
 * {@link WireError} with the code given (`ERR_REMOTE_REFUSED` when the
 * answer has none WTD knows).
 */
export function refusalFrom(res: HttpResponse): WireError {
  let refusal: { error?: { code?: unknown; message?: unknown } } = {};
  try {
    refusal = JSON.parse(res.text) as typeof refusal;
  } catch {
    // not JSON: reported with the status alone
  }
  const code = isErrorCode(refusal.error?.code) ? refusal.error.code : 'ERR_REMOTE_REFUSED';
  const message =
    typeof refusal.error?.message === 'string' ? refusal.error.message : `the node answered ${res.status}`;
  if (code === 'ERR_RATE_LIMITED' || res.status === 429) {
    const after = Number(res.retryAfter);
    return new RateLimitedError(Number.isFinite(after) && after > 0 ? after : 1);
  }
  if (code.startsWith('ERR_PROXY_')) return new ProxyRefusal(code, res.status, message);
  return new WireError(code, res.status, message);
}

/** Makes an error safe to send back in a reply: code and message, nothing else. */
export function errorBody(err: unknown): { code: string; message: string } {
  if (err instanceof WtdError) return { code: err.code, message: err.message };
  return { code: 'ERR_REMOTE_EXCEPTION', message: err instanceof Error ? err.message : String(err) };
}

/**
 * True when `res` says the session a request was sealed in is gone (the
 * other node restarted, or the session ended): the request was not run,
 * and may be sent again in a new session.
 */
export function sessionLost(res: HttpResponse): boolean {
  if (res.status !== 401 || !res.contentType.startsWith('application/json')) return false;
  const code = refusalFrom(res).code;
  return code === 'ERR_SESSION_UNKNOWN' || code === 'ERR_SESSION_EXPIRED';
}
