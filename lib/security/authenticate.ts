import type { KeyObject } from 'node:crypto';
import { WireError } from '../errors.js';
import { epochSeconds, type WallClock } from '../runtime/clock.js';
import { CLOCK_SKEW_S, MESSAGE_TTL_S, type ClaimsOf, type MessageKind } from '../wire/claims.js';
import { peekClaims, readKid, verify } from '../wire/envelope.js';
import type { ReplayWindow } from './replay-window.js';

/**
 * The key a request names, found by its `kid`, and whatever the resolver
 * learned on the way (the grant, the registration) for the caller to use.
 */
export interface ResolvedKey<T> {
  key: KeyObject;
  found: T;
}

/**
 * Finds the key `kid` names, or throws the refusal for an unknown one. It may
 * read the claims unverified (`peek`) when the key travels in them, as a
 * registration's does; what it returns is trusted only once the signature
 * verifies with it.
 */
export type KeyResolver<T> = (
  kid: string,
  peek: () => Record<string, unknown>,
) => ResolvedKey<T> | Promise<ResolvedKey<T>>;

/** What a request must be: its kind, who it is for, where it was sent, and where its id is remembered. */
export interface Expected<T> {
  kind: MessageKind;
  key: KeyResolver<T>;
  /** Our own id: the audience the request must name. */
  aud: string;
  method: string;
  path: string;
  replay: ReplayWindow;
  /**
   * Set when the caller admits the request's id itself, with what the
   * request does (in one commit, as a proxy's poll does), through
   * {@link Authenticated.admit}, before it acts on anything.
   */
  admitLater?: boolean;
  clock: WallClock;
}

/** An authenticated request: its claims, the key id that signed it and what the resolver found. */
export interface Authenticated<K extends MessageKind, T> {
  claims: ClaimsOf[K];
  kid: string;
  found: T;
  /** Admits the id into the replay window (`ERR_REPLAY`); done already unless `admitLater` was asked for. */
  admit: () => void;
}

/**
 * The one authentication pipeline of every signed request, node and proxy
 * alike (jose's `compactVerify(jws, getKey)` shape): parse once, then check,
 * in this order, the JWS shape and `typ` (`ERR_BAD_JWS`), `alg`
 * (`ERR_BAD_ALG`), the key (the resolver's refusal), the signature
 * (`ERR_BAD_SIGNATURE`), the audience (`ERR_WRONG_AUDIENCE`), method and
 * path (`ERR_WRONG_PATH`), the time window (`ERR_STALE`) and the replay
 * window (`ERR_REPLAY`). Each refusal is a {@link WireError} with its HTTP
 * status; nothing of the request is used before it passes. Only what one
 * side alone knows is checked after it: grants and missions on a node,
 * registrations on a proxy.
 */
export async function authenticate<K extends MessageKind, T>(
  jws: unknown,
  expected: Expected<T> & { kind: K },
): Promise<Authenticated<K, T>> {
  const kid = readKid(jws, expected.kind);
  const text = jws as string;
  const { key, found } = await expected.key(kid, () => peekClaims(text));
  const claims = await verify(text, key);
  if (claims.aud !== expected.aud) {
    throw new WireError('ERR_WRONG_AUDIENCE', 401, 'this message was signed for another node');
  }
  if (claims.path !== expected.path || claims.method !== expected.method) {
    throw new WireError(
      'ERR_WRONG_PATH',
      401,
      `this message was signed for ${String(claims.method)} ${String(claims.path)}, not ${expected.method} ${expected.path}`,
    );
  }
  checkTime(claims, expected.clock);
  let admitted = false;
  const admit = (): void => {
    if (admitted) return;
    expected.replay.admit(claims);
    admitted = true;
  };
  if (expected.admitLater !== true) admit();
  return { claims: claims as unknown as ClaimsOf[K], kid, found, admit };
}

/**
 * The time window of a signed message: not issued in the future, not
 * expired, not valid for longer than {@link MESSAGE_TTL_S}, `exp` after
 * `iat` (each within {@link CLOCK_SKEW_S}); `ERR_STALE` (401) otherwise.
 * Replies are checked by it too.
 */
export function checkTime(c: { iat: number; exp: number }, clock: WallClock): void {
  const nowS = epochSeconds(clock);
  if (c.iat > nowS + CLOCK_SKEW_S) {
    throw new WireError('ERR_STALE', 401, 'this message was issued in the future; check the sender clock');
  }
  if (c.exp < nowS - CLOCK_SKEW_S || c.exp - c.iat > MESSAGE_TTL_S || c.exp < c.iat) {
    throw new WireError('ERR_STALE', 401, 'this message has expired; send a fresh one');
  }
}
