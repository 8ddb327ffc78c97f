import type { CallSlot } from './gen.js';

/* The messages a GenServer's client functions send it; user code never sees them. */

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
