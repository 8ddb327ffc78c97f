/**
 * What one scenario of the abuse suite is: a bounded attack that runs in
 * the attacker's own process, and optionally what the runner sets up before
 * it and looks at after it. The runner does the rest the same way for
 * every scenario: a fresh node and proxy in their own processes, honest
 * calls during the attack, peak memory, disk, crashes.
 */
import type { GrantFile, RateLimit } from '../../lib/index.js';
import type { Child } from './children.js';
import type { Honest } from './honest.js';

export type Profile = 'short' | 'full';

/** The bounds of an attack: it stops at whichever comes first. */
export interface Caps {
  timeMs: number;
  count: number;
}

/** Where the attacker aims, and with what. */
export interface AttackEnv {
  profile: Profile;
  caps: Caps;
  node: { url: string; id: string };
  proxy: { url: string; id: string };
  /** The attacker's grant from Alice, and its rate. */
  grant: GrantFile;
  rate: RateLimit;
  /** Alice's e-mail at the proxy. */
  aliceEmail: string;
  /** What the runner's `prepare` handed over. */
  params: Record<string, unknown>;
  /** Says the attack proper begins (after its own setup): honest calls are measured from now. */
  started(): void;
}

/** What the attacker saw. */
export interface AttackReport {
  attempted: number;
  /** How much of the abuse got through (what is counted is the scenario's `counts`). */
  accepted: number;
  /** The most the grant's stated rate allows over the attack, or null where no grant's rate applies. */
  allowed: number | null;
  detail: Record<string, unknown>;
}

/** A check of its own a scenario adds to the acceptance. */
export interface Check {
  name: string;
  ok: boolean;
}

/** What the runner's look after the attack adds or corrects (e.g. connections a third machine received). */
export interface Verdict {
  accepted?: number;
  allowed?: number | null;
  detail?: Record<string, unknown>;
  checks?: Check[];
}

/** What a scenario's runner side can reach. */
export interface RunnerEnv {
  profile: Profile;
  caps: Caps;
  node: { url: string; id: string; child: Child };
  proxy: { url: string; id: string; child: Child; dataDir: string };
  honest: Honest;
  aliceEmail: string;
}

export interface Prepared {
  params?: Record<string, unknown>;
  /** Runs once the attacker reported, before the processes stop. */
  finish?(report: AttackReport): Promise<Verdict>;
  /** Releases what prepare made (also when the scenario failed). */
  close?(): Promise<void>;
}

export interface Scenario {
  /** Its id: `npm run abuse -- --only <name>`. */
  name: string;
  /** Its row in the table. */
  title: string;
  /** What "abuse accepted" counts. */
  counts: string;
  caps: Record<Profile, Caps>;
  /** The attacker's grant rate, when not the README's 10/s. */
  rate?: RateLimit;
  /** The proxy's disk must come back within 10 % of its size before once the messages expired. */
  disk?: boolean;
  prepare?(env: RunnerEnv): Promise<Prepared>;
  attack(env: AttackEnv): Promise<AttackReport>;
}

/** The README's grant: ten a second, a burst of ten. */
export const TEN_A_SECOND: RateLimit = { count: 10, intervalMs: 1000, burst: 10 };

/** The most a token bucket of `rate` lets through in `elapsedMs`: its burst, and what it refills. */
export function withinRate(rate: RateLimit, elapsedMs: number): number {
  return Math.floor(rate.burst + (rate.count * elapsedMs) / rate.intervalMs);
}

/**
 * Runs `work(i)` from `concurrency` workers until `caps.count` runs were
 * started or `caps.timeMs` passed (`every`: at most one start per that many
 * ms per worker). Returns how many ran and how long it took.
 */
export async function bounded(
  caps: Caps,
  concurrency: number,
  work: (i: number) => Promise<void>,
  every = 0,
): Promise<{ runs: number; elapsedMs: number }> {
  const started = Date.now();
  const end = started + caps.timeMs;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < caps.count && Date.now() < end) {
        const t = Date.now();
        await work(next++);
        const wait = every - (Date.now() - t);
        if (wait > 0 && Date.now() + wait < end) await sleep(wait);
      }
    }),
  );
  return { runs: next, elapsedMs: Date.now() - started };
}

/** A load script's pause (the suite runs on real time; specs never sleep). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A tally of outcomes by code (or status). */
export function tally(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}
