import { describeValue } from '../errors.js';
import { TIMEOUT } from '../runtime/messages.js';
import { ProcessExit, type Process } from '../runtime/process.js';
import type { Timed } from '../runtime/timer-queue.js';
import type { CallSlot } from './gen.js';

/* The messages a GenServer's client functions send it (user code never sees them), and what its loop needs besides. */

/** @internal */ export class CallRequest {
  constructor(
    readonly request: unknown,
    readonly from: CallSlot,
  ) {}
}
/** @internal */ export class CastRequest {
  constructor(readonly request: unknown) {}
}
/** @internal */ export class StopRequest {
  constructor(
    readonly reason: unknown,
    readonly from: CallSlot,
  ) {}
}

/** @internal */
/** @internal How a crash report shows the message being handled. */
export function describeMessage(msg: unknown): string {
  if (msg instanceof CallRequest) return `call ${describeValue(msg.request)}`;
  if (msg instanceof CastRequest) return `cast ${describeValue(msg.request)}`;
  if (msg instanceof StopRequest) return `stop ${describeValue(msg.reason)}`;
  return describeValue(msg);
}

/** What a callback's throw means: `self.exit(reason)` gives its reason, anything else is the error itself. */
export function exitReason(err: unknown): unknown {
  return err instanceof ProcessExit ? err.reason : err;
}

export function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x !== null && typeof x === 'object' && typeof (x as { then?: unknown }).then === 'function';
}

export type Kind = 'handleCall' | 'handleCast' | 'handleInfo' | 'handleContinue';

export const EXPECTED: Record<Kind, string> = {
  handleCall: 'reply(value, state), noreply(state), stop(reason, state) or stopAndReply(reason, value, state)',
  handleCast: 'noreply(state) or stop(reason, state)',
  handleInfo: 'noreply(state) or stop(reason, state)',
  handleContinue: 'noreply(state) or stop(reason, state)',
};

/** Delivers `TIMEOUT` (or the message a timeout carries) to `handleInfo` when a callback's timeout passes with no message. */
export class IdleTimer implements Timed {
  _at = 0;
  _seq = 0;
  _heapIndex = -1;
  msg: unknown = TIMEOUT;
  constructor(readonly self: Process) {}
  _timeout(): void {
    this.self._deliver(this.msg);
  }
}
