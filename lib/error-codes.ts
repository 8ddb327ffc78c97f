/**
 * Every error code WTD uses, in one place. `WtdError.code` is one of these;
 * README's error tables list each of them (a spec checks it), so a program
 * can match on a code knowing it will not be renamed in a minor version.
 * @module
 */

/**
 * Every stable error code, grouped as README's tables are.
 *
 * @example
 * ```ts
 * ERROR_CODES.includes('ERR_NOPROC'); // true
 * ```
 */
export const ERROR_CODES = [
  // Processes and behaviours
  'ERR_NOPROC',
  'ERR_CALL_TIMEOUT',
  'ERR_SERVER_EXITED',
  'ERR_CALLING_SELF',
  'ERR_BAD_RETURN_VALUE',
  'ERR_START_FAILED',
  'ERR_START_IGNORED',
  'ERR_START_TIMEOUT',
  'ERR_NAME_TAKEN',
  'ERR_ALREADY_NAMED',
  'ERR_ALREADY_STARTED',
  'ERR_NOT_LOCAL',
  'ERR_CHILD_NOT_FOUND',
  'ERR_CHILD_RUNNING',
  'ERR_CHILD_RESTARTING',
  'ERR_ALREADY_PRESENT',
  'ERR_SIMPLE_ONE_FOR_ONE',
  'ERR_BAD_CHILD_SPEC',
  'ERR_BAD_SUPERVISOR_FLAGS',
  'ERR_HANDLER_NOT_FOUND',
  'ERR_HANDLER_EXISTS',
  'ERR_HANDLER_INIT',
  'ERR_HANDLER_CRASHED',
  'ERR_UNKNOWN_STATE',
  // Missions
  'ERR_INVALID_MISSION',
  'ERR_NOT_A_METHOD',
  'ERR_NOT_A_BEHAVIOUR',
  'ERR_DUPLICATE_MODULE',
  'ERR_INVALID_NAME',
  'ERR_NEEDS_INSTANCE',
  'ERR_NOTHING_EXPORTED',
  // Values on the wire
  'ERR_NOT_SERIALIZABLE',
  'ERR_BAD_PID',
  // Nodes, keys and stores
  'ERR_BAD_KEY',
  'ERR_STORE',
  'ERR_DATA_DIR_LOCKED',
  'ERR_GRANT_EXISTS',
  'ERR_LISTEN',
  'ERR_ALREADY_LISTENING',
  'ERR_ALREADY_JOINED',
  'ERR_NO_ADDRESS',
  'ERR_NO_PROXY',
  'ERR_NODE_DOWN',
  'ERR_NO_MEMBERS',
  // A request's envelope (the one authentication pipeline, node and proxy alike)
  'ERR_NOT_FOUND',
  'ERR_METHOD_NOT_ALLOWED',
  'ERR_TOO_LARGE',
  'ERR_UNSUPPORTED_MEDIA',
  'ERR_BAD_REQUEST',
  'ERR_BAD_JWS',
  'ERR_BAD_ALG',
  'ERR_UNKNOWN_KEY',
  'ERR_BAD_SIGNATURE',
  'ERR_WRONG_AUDIENCE',
  'ERR_WRONG_PATH',
  'ERR_STALE',
  'ERR_REPLAY',
  'ERR_INTERNAL',
  // Sessions
  'ERR_SESSION_UNKNOWN',
  'ERR_SESSION_EXPIRED',
  'ERR_SESSION_REQUIRED',
  'ERR_TOO_MANY_SESSIONS',
  // Grants and what they allow
  'ERR_GRANT_REVOKED',
  'ERR_GRANT_EXPIRED',
  'ERR_MISSION_NOT_GRANTED',
  'ERR_RATE_LIMITED',
  'ERR_BAD_ARGUMENTS',
  'ERR_BAD_ARITY',
  'ERR_PID_NOT_GRANTED',
  'ERR_TOO_MANY_MONITORS',
  'ERR_WRONG_ISSUER',
  'ERR_MAILBOX_FULL',
  'ERR_NOT_SUPPORTED',
  // Answers
  'ERR_REMOTE_EXCEPTION',
  'ERR_MAYBE_RAN',
  'ERR_ALREADY_RAN',
  'ERR_CALL_CANCELLED',
  'ERR_REMOTE_REFUSED',
  'ERR_BAD_REPLY',
  'ERR_BAD_PROXY',
  // The proxy's own refusals
  'ERR_PROXY_NOT_REGISTERED',
  'ERR_PROXY_DENIED',
  'ERR_PROXY_BAD_REQUEST',
  'ERR_PROXY_QUEUE_FULL',
  'ERR_PROXY_TOO_LARGE',
  'ERR_PROXY_EXPIRED',
  'ERR_PROXY_BUSY',
  'ERR_PROXY_NOT_ACCEPTED',
  'ERR_PROXY_SENDER_LIMIT',
  'ERR_PROXY_FULL',
  'ERR_PROXY_EMAIL_TAKEN',
  // The wtd command
  'ERR_USAGE',
  'ERR_MISSING',
  'ERR_UNKNOWN_MISSION',
  'ERR_MODULE_LOAD',
  'ERR_INTERRUPTED',
] as const;

/**
 * A stable error code: the type of `WtdError.code`.
 *
 * @example
 * ```ts
 * const code: ErrorCode = 'ERR_RATE_LIMITED';
 * ```
 */
export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/**
 * True when `code` is one of {@link ERROR_CODES} (a code read from the wire may be anything).
 *
 * @example
 * ```ts
 * isErrorCode('ERR_NOPROC'); // true
 * isErrorCode('EACCES'); // false
 * ```
 */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN.has(code);
}
