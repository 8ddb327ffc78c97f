import type { RemoteNode } from './remote-node.js';
import type { GroupMember } from './group-options.js';

/** Refusals that say the grant itself is gone: the member leaves at once. */
export const GRANT_ENDED = new Set(['ERR_GRANT_REVOKED', 'ERR_UNKNOWN_KEY', 'ERR_GRANT_EXPIRED']);
/** Refusals of a probe that say this node may not call that one under the mission: never a member. */
export const NOT_A_MEMBER = new Set([
  ...GRANT_ENDED,
  'ERR_MISSION_NOT_GRANTED',
  'ERR_PROXY_NOT_ACCEPTED',
  'ERR_WRONG_ISSUER',
  'ERR_NOT_FOUND',
]);
/** Errors that say the member could not be reached or did not answer: sidelined until a probe passes. */
export const TRANSPORT = new Set([
  'ERR_NODE_DOWN',
  'ERR_MAYBE_RAN',
  'ERR_CALL_TIMEOUT',
  'ERR_BAD_REPLY',
  'ERR_PROXY_EXPIRED',
  'ERR_PROXY_NOT_REGISTERED',
]);
/** Not-run failures that are the caller's doing: every member would refuse them alike, so none is tried again. */
export const CALLERS_FAULT = new Set([
  'ERR_NOT_SERIALIZABLE',
  'ERR_BAD_ARITY',
  'ERR_BAD_ARGUMENTS',
  'ERR_CALL_CANCELLED',
]);

/** How much of a round trip shorter than the average goes into it (a longer one is taken whole: a peak). */
const LATENCY_WEIGHT = 0.2;

/** @internal A member as its group keeps it: counted and weighed as calls go. */
export class Member implements GroupMember {
  inFlight = 0;
  load = 0;
  latencyMs = 1;
  state: GroupMember['state'] = 'up';
  /** The calls in flight to it, to give up when its node goes down (those its proxy still holds move on). */
  readonly calls = new Set<AbortController>();
  constructor(readonly remote: RemoteNode) {}
  get nodeId(): string {
    return this.remote.nodeId;
  }
  /** A round trip: a slower one than the average is believed at once, a faster one little by little. */
  observe(ms: number): void {
    this.latencyMs = ms > this.latencyMs ? ms : this.latencyMs + (ms - this.latencyMs) * LATENCY_WEIGHT;
  }
  get via(): 'direct' | 'proxy' {
    return this.remote.via;
  }
}

export type Listener = (member: GroupMember) => void;

/** What a member looks like now, to give out (it goes on changing). */
export function snapshot(m: Member): GroupMember {
  return { nodeId: m.nodeId, via: m.via, inFlight: m.inFlight, load: m.load, latencyMs: m.latencyMs, state: m.state };
}
