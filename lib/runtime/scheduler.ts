/**
 * Something the scheduler can run: a process with work to do, or an exit
 * signal on its way.
 * @internal
 */
export interface Runnable {
  /** Does one turn of work. Calls {@link Scheduler.tick} per unit of work. */
  _run(): void;
}

/** Reductions between looks at the clock. */
const REDUCTIONS = 1000;
/** How long work may hold the event loop before it must let I/O and timers in. */
const SLICE_MS = 2;

/**
 * Runs ready processes in turn and keeps the event loop breathing.
 *
 * JavaScript cannot pre-empt a running function, so fairness is counted the
 * way BEAM counts it: every message a process takes (a *reduction*) calls
 * {@link tick}. Work continues in microtasks, which is what makes a local
 * message cost tens of nanoseconds, until a slice of {@link SLICE_MS} has
 * passed since the current macrotask began. Then `tick` says no, the caller
 * parks its process in the run queue, and the queue resumes from
 * `setImmediate`, after timers and I/O have had their turn.
 * @internal
 */
export class Scheduler {
  // Invariant: a process is queued at most once (it guards with its own
  // _queued flag); #scheduled is true while a drain is pending or running.
  // The run queue: a ring buffer, #count entries from #head.
  #queue: (Runnable | undefined)[] = new Array<Runnable | undefined>(256);
  #head = 0;
  #count = 0;
  #scheduled = false;
  #macro = false;
  #budget = REDUCTIONS;
  #inSlice = false;
  #sliceStart = 0;

  readonly #endSlice = (): void => {
    this.#inSlice = false;
  };

  readonly #drainMicro = (): void => {
    this.#drain();
  };

  readonly #drainMacro = (): void => {
    this.#macro = false;
    this.#startSlice();
    this.#budget = REDUCTIONS;
    this.#drain();
  };

  /** Puts `r` at the back of the run queue. */
  enqueue(r: Runnable): void {
    const q = this.#queue;
    if (this.#count === q.length) this.#grow();
    this.#queue[(this.#head + this.#count) & (this.#queue.length - 1)] = r;
    this.#count++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      // A resolved promise's then is V8's own microtask queue; Node's
      // queueMicrotask adds async-context bookkeeping we do not need.
      if (this.hasBudget) RESOLVED.then(this.#drainMicro);
      else this.#scheduleMacro();
    }
  }

  /**
   * Puts `r` in the run queue once the event loop has turned: after every
   * process already woken (by a message, in microtasks) has had its go, and
   * after timers and I/O. This is what `yield()` means, and it keeps a
   * flooding sender from racing ahead of its receiver.
   */
  enqueueLater(r: Runnable): void {
    this.#later.push(r);
    if (!this.#laterScheduled) {
      this.#laterScheduled = true;
      setImmediate(this.#releaseLater);
    }
  }

  readonly #later: Runnable[] = [];
  #laterScheduled = false;
  readonly #releaseLater = (): void => {
    this.#laterScheduled = false;
    const later = this.#later.splice(0);
    for (const r of later) this.enqueue(r);
  };

  #grow(): void {
    const old = this.#queue;
    const next = new Array<Runnable | undefined>(old.length * 2);
    for (let k = 0; k < this.#count; k++) next[k] = old[(this.#head + k) & (old.length - 1)];
    this.#queue = next;
    this.#head = 0;
  }

  /**
   * Counts one reduction. True: carry on now. False: the slice is spent;
   * park the work in the run queue so the event loop gets a turn first.
   */
  tick(): boolean {
    if (--this.#budget > 0) return true;
    return this.#refill();
  }

  /**
   * Counts a reduction that cannot yield on the spot (a message queued by a
   * send). The sender pays for it at its next receive or yield, as BEAM
   * charges a send to the sender.
   */
  spend(): void {
    this.#budget--;
  }

  /** True while the current slice has budget left (does not count a reduction). */
  get hasBudget(): boolean {
    return this.#budget > 0 || this.#refill();
  }

  #refill(): boolean {
    if (this.#macro) return false;
    const now = performance.now();
    if (!this.#inSlice) {
      this.#startSlice(now);
    } else if (now - this.#sliceStart >= SLICE_MS) {
      this.#budget = 0;
      return false;
    }
    this.#budget = REDUCTIONS;
    return true;
  }

  #startSlice(now = performance.now()): void {
    this.#sliceStart = now;
    if (!this.#inSlice) {
      this.#inSlice = true;
      // setImmediate runs once the current macrotask and its microtasks are
      // done, which is exactly when this slice ends.
      setImmediate(this.#endSlice);
    }
  }

  #scheduleMacro(): void {
    if (this.#macro) return;
    this.#macro = true;
    setImmediate(this.#drainMacro);
  }

  #drain(): void {
    while (this.#count > 0) {
      if (!this.tick()) {
        this.#scheduleMacro();
        return;
      }
      const q = this.#queue;
      const r = q[this.#head]!;
      q[this.#head] = undefined;
      this.#head = (this.#head + 1) & (q.length - 1);
      this.#count--;
      r._run();
    }
    this.#scheduled = false;
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The one scheduler of this JavaScript process. It is shared by every node in
 * it, because the event loop it protects is shared too.
 * @internal
 */
export const scheduler = new Scheduler();
