import type { ErrorCode } from '../error-codes.js';
import { CommandError, RateLimitedError, WtdError } from '../errors.js';
import { EXIT } from './command.js';

/**
 * How a command's failure is told: one line with the reason and the code,
 * a second with what to do next when the reason does not say it already,
 * and the exit code; with `--json`, the same as one object on stdout.
 * @module
 */

/** A failure as the command reports it. */
export interface Report {
  code: ErrorCode;
  message: string;
  hint?: string;
  exit: number;
  /** More facts for scripts (`retryAfterS`, `mayHaveRun`...). */
  facts?: Record<string, unknown>;
}

/**
 * What to do next, per code, in the command's words, for the codes whose
 * message (the library's, or the other node's) says only what happened.
 * A message that already says what to do gets no hint: each reason once.
 */
const NEXT: Partial<Record<ErrorCode, string>> = {
  ERR_UNKNOWN_KEY: 'check the grant file is one this node made; its owner can make a new one',
  ERR_MISSION_NOT_GRANTED: 'check the module and function names, or ask the node owner for that mission',
  ERR_BAD_KEY: "give the file 'wtd whoami --out <file>' writes",
  ERR_PROXY_NOT_REGISTERED:
    "the node is not on that proxy now: its owner starts it with 'wtd start <module> --proxy <url>'",
  ERR_PROXY_QUEUE_FULL: 'the other node is not collecting its messages: try again later',
  ERR_PROXY_EXPIRED: 'the other node was offline for too long: try again when it is online',
  ERR_PROXY_BUSY: 'the proxy is busy: try again in a moment',
  ERR_PROXY_NOT_ACCEPTED: 'the other node does not accept this key: ask its owner for a grant',
  ERR_PROXY_SENDER_LIMIT: 'too much of yours waits at the proxy: try again once it has been collected',
  ERR_PROXY_FULL: "the proxy is full: try again later, or ask its operator ('wtd proxy nodes', 'wtd proxy remove')",
  ERR_PROXY_EMAIL_TAKEN:
    "another key has this e-mail at the proxy: use another --email, or ask its operator to 'wtd proxy remove' it",
  ERR_WRONG_ISSUER:
    'a grant file works for the first node that used it: use that data directory, or ask for a grant file of your own',
  ERR_MAILBOX_FULL: 'the process is not keeping up with its messages: send more slowly',
  ERR_BAD_REPLY: 'the other side is not a WTD node of this version, or something altered its answer',
  ERR_REMOTE_REFUSED: 'the other side is not a WTD node of this version',
  ERR_STALE: "check both machines' clocks",
  ERR_BAD_ARITY: 'pass the arguments as a JSON array, one item per argument: \'["bob", 2]\'',
};

/** The exit code of a failure with `code`. */
export function exitCode(code: ErrorCode): number {
  switch (code) {
    case 'ERR_USAGE':
      return EXIT.usage;
    case 'ERR_MISSING':
      return EXIT.notFound;
    case 'ERR_NODE_DOWN':
    case 'ERR_CALL_TIMEOUT':
    case 'ERR_MAYBE_RAN':
      return EXIT.unreachable;
    case 'ERR_INTERRUPTED':
      return EXIT.interrupted;
    default:
      return EXIT.failed;
  }
}

/** The report of `err`, thrown by a command. */
export function report(err: unknown): Report {
  if (err instanceof CommandError) {
    return withFacts(err, { code: err.code, message: err.message, hint: err.hint, exit: exitCode(err.code) });
  }
  if (err instanceof WtdError) {
    const hinted = err as WtdError & { hint?: string };
    const hint = hinted.hint ?? NEXT[err.code];
    const facts = err instanceof RateLimitedError ? { retryAfterS: err.retryAfterS } : undefined;
    return withFacts(err, { code: err.code, message: err.message, hint, exit: exitCode(err.code), facts });
  }
  if (err instanceof SyntaxError || err instanceof TypeError || err instanceof RangeError) {
    return { code: 'ERR_USAGE', message: err.message, exit: EXIT.usage };
  }
  return { code: 'ERR_INTERNAL', message: (err as Error)?.message ?? String(err), exit: EXIT.failed };
}

function withFacts(err: WtdError, r: Report): Report {
  const facts = { ...r.facts, ...(err as { facts?: Record<string, unknown> }).facts };
  const out: Report = { code: r.code, message: r.message, exit: r.exit };
  if (r.hint !== undefined) out.hint = r.hint;
  if (Object.keys(facts).length > 0) out.facts = facts;
  return out;
}

/** Gives `err` the hint `hint` (in the command's words), and returns it. */
export function hinted<E extends Error>(err: E, hint: string): E {
  (err as E & { hint?: string }).hint = hint;
  return err;
}

/** Gives `err` facts for scripts (`mayHaveRun`...), and returns it. */
export function withFactsOf<E extends Error>(err: E, facts: Record<string, unknown>): E {
  const e = err as E & { facts?: Record<string, unknown> };
  e.facts = { ...e.facts, ...facts };
  return e;
}

/** The lines a person reads: `wtd call: <reason> [CODE]`, then the hint. */
export function humanReport(command: string, r: Report): string[] {
  const lines = [`${command === '' ? 'wtd' : `wtd ${command}`}: ${r.message} [${r.code}]`];
  if (r.hint !== undefined) lines.push(`  ${r.hint}`);
  return lines;
}

/** The object a script reads on stdout with `--json`. */
export function jsonReport(r: Report): string {
  return JSON.stringify(
    { error: { code: r.code, message: r.message, hint: r.hint ?? null, exit: r.exit, ...r.facts } },
    null,
    2,
  );
}
