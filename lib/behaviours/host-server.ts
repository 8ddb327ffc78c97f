import type { Process } from '../runtime/process.js';
import { SELF } from './gen.js';
import { GenServer, Refusal } from './gen-server.js';
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
