/**
 * Busy waiting after network I/O, as the schedulers of Erlang's VM do
 * before they sleep (`+sbwt`): for a moment after a call, an answer or a
 * relayed message was sent or received, the event loop keeps turning
 * instead of sleeping in the kernel, so what usually follows within that
 * moment (the answer, the caller's next call) is read as it lands, not
 * after the process is woken up again. On a machine whose idle cores halt
 * (most virtual machines, many small boards) a wake-up costs tens of
 * microseconds; a relayed call has four of them.
 *
 * What pokes it is work someone was allowed to ask for: a node's own
 * requests and calls and their answers, a call that passed every check, a
 * line of its proxy's (checked by its MAC), and at the proxy a message it
 * relayed. What a stranger can send without a grant (a refused request or
 * call, a line that relays nothing) does not, so it costs only what its
 * checks cost.
 *
 * What it costs: at most `busyWaitMs` of one core after each burst of that
 * activity, nothing while the node or proxy is idle. The process waits for
 * the longest `busyWaitMs` of the nodes and proxies running in it; `0`
 * turns it off for one of them.
 * @module
 */

/** Default `busyWaitMs` of a node and of a proxy: covers a relayed call's turns between processes on one machine or a LAN. */
export const BUSY_WAIT_MS = 0.5;

/** Largest `busyWaitMs` taken: longer is a core spent waiting, not latency saved. */
export const MAX_BUSY_WAIT_MS = 100;

/** `ms` as a `busyWaitMs` (the default when undefined); anything else than 0 to {@link MAX_BUSY_WAIT_MS} is a RangeError. */
export function busyWaitOption(where: string, ms: number | undefined): number {
  if (ms === undefined) return BUSY_WAIT_MS;
  if (typeof ms !== 'number' || !(ms >= 0 && ms <= MAX_BUSY_WAIT_MS)) {
    throw new RangeError(`${where}: busyWaitMs must be a number from 0 to ${MAX_BUSY_WAIT_MS}, got ${String(ms)}`);
  }
  return ms;
}

/**
 * The busy wait of one process's event loop. Nodes and proxies enlist
 * their `busyWaitMs` while they run; network code {@link poke}s it when it
 * reads or writes; it turns the loop (one `setImmediate` after another)
 * until the longest enlisted time has passed since the last poke.
 */
export class BusyWait {
  readonly #now: () => number;
  readonly #later: (turn: () => void) => void;
  readonly #budgets: number[] = [];
  #budget = 0;
  #until = 0;
  #turning = false;
  #turns = 0;
  #idle: (() => void)[] = [];

  /** `now` in ms, and how a turn is scheduled: by default the monotonic clock and `setImmediate` (pacing of the loop, not time a spec drives). */
  constructor(now: () => number = () => performance.now(), later: (turn: () => void) => void = (t) => setImmediate(t)) {
    this.#now = now;
    this.#later = later;
  }

  /** Adds a budget of `ms` while its owner runs; returns what takes it back. */
  enlist(ms: number): () => void {
    this.#budgets.push(ms);
    this.#budget = Math.max(this.#budget, ms);
    let enlisted = true;
    return () => {
      if (!enlisted) return;
      enlisted = false;
      this.#budgets.splice(this.#budgets.indexOf(ms), 1);
      this.#budget = this.#budgets.reduce((a, b) => Math.max(a, b), 0);
    };
  }

  /** The time waited after a poke now, in ms: the longest enlisted. */
  get budget(): number {
    return this.#budget;
  }

  /** Turns of the loop made while waiting, since the process started. */
  get turns(): number {
    return this.#turns;
  }

  /** Whether the loop is kept turning now. */
  get turning(): boolean {
    return this.#turning;
  }

  /** Network activity: keep the loop turning for the budget from now. */
  poke(): void {
    if (this.#budget <= 0) return;
    this.#until = this.#now() + this.#budget;
    if (this.#turning) return;
    this.#turning = true;
    this.#later(this.#turn);
  }

  /** Resolves once the loop is no longer kept turning. */
  idle(): Promise<void> {
    return this.#turning ? new Promise((resolve) => this.#idle.push(resolve)) : Promise.resolve();
  }

  readonly #turn = (): void => {
    if (this.#budget > 0 && this.#now() < this.#until) {
      this.#turns++;
      this.#later(this.#turn);
      return;
    }
    this.#turning = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  };
}

/** This process's busy wait. */
export const busyWait = new BusyWait();
