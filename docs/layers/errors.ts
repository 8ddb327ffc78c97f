/**
 * Every error WTD throws on purpose: `WtdError` and its subclasses, and the one list of their stable codes.
 * @module Errors
 */
export {
  WtdError,
  NoProcError,
  CallTimeoutError,
  CallingSelfError,
  ServerExitError,
  BadReturnValueError,
  StartError,
  NameError,
  SupervisorError,
  GenEventError,
  MissionError,
  NotSerializableError,
  WireError,
  NodeDownError,
  RemoteError,
  MaybeRanError,
  outcomeOf,
  RateLimitedError,
  ProxyRefusal,
  DataDirLockedError,
  CommandError,
  formatReason,
  ERROR_CODES,
  isErrorCode,
} from '../../lib/index.js';
export type { WtdErrorOptions, ErrorCode, CallOutcome } from '../../lib/index.js';
