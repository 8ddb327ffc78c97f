import type { Process } from '../runtime/process.js';
import { SELF } from './gen.js';
import type { ServerRef } from './gen.js';
import { GenServer } from './gen-server.js';
import { Reply } from './results.js';

/**
 * A GenServer that runs a user's behaviour object: a Supervisor, a GenEvent
 * manager or a GenFsm. This is how OTP builds `supervisor` on `gen_server`,
 * and it gives all three the same call protocol, start, stop and reports.
 * @internal
 */
export abstract class HostServer<M extends { [SELF]: Process | undefined }, S, Req = unknown> extends GenServer<
  S,
  Req
> {
  constructor(readonly module: M) {
    super();
  }

  /** The user's object, for introspection and missions. */
  get behaviourModule(): object {
    return this.module;
  }

  /** Lets the user's object reach its process as `this.self`; call first thing in `init`. */
  protected adopt(): void {
    this.module[SELF] = this.self;
  }

  /**
   * Replies with what `work` returns; a thrown error becomes a
   * {@link Refusal}, thrown again in the caller, so a refused request never
   * takes the server down.
   */
  protected async answer(work: () => unknown, state: S): Promise<Reply<unknown, S>> {
    try {
      return new Reply(await work(), state);
    } catch (err) {
      return new Reply(new Refusal(err), state);
    }
  }
}

/**
 * An answer that is an error for the caller but not for the server: a
 * refused supervisor or event-manager request. The server keeps running.
 * @internal
 */
export class Refusal {
  constructor(readonly error: unknown) {}
}

/** @internal `GenServer.call` that throws a {@link Refusal}'s error in the caller. */
export async function callOrThrow(ref: ServerRef, request: unknown, timeout: number): Promise<unknown> {
  const answer = await GenServer.call(ref, request, timeout);
  if (answer instanceof Refusal) throw answer.error;
  return answer;
}
