/**
 * The row `idle_node_rss`: a node joined to a proxy (each in its own
 * process), idle for a while, against the Raspberry Pi budget: resident
 * memory and CPU (as % of one core) over the idle time. Unpaired: it is a
 * budget, not a comparison.
 */
import type { ChildProcess } from 'node:child_process';
import { Lines, start, stop } from './processes.js';

/** The Raspberry Pi budget of a node that is joined to a proxy and idle. */
export const IDLE_BUDGET = { rssMb: 60, cpuPercent: 1 };

/** One row of bench/results/latest.json that holds WTD to a budget instead of a peer. */
export interface BudgetRow {
  name: string;
  unit: string;
  /** Resident memory at the end of the idle time. */
  value: number;
  budget: number;
  /** The node's CPU time over the idle time, as % of one core. */
  cpuPercent: number;
  cpuBudget: number;
  /** The highest resident memory the node reached (joining included). */
  peakRssMb: number;
  idleSeconds: number;
  withinBudget: boolean;
}

const script = (name: string): string => new URL(name, import.meta.url).pathname;

export async function runIdle(seconds: number): Promise<BudgetRow> {
  const children: ChildProcess[] = [];
  try {
    const proxy = start(process.execPath, [script('./proxy-process.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(proxy);
    const url = await new Lines('proxy', proxy).next(30_000);
    const node = start(process.execPath, [script('./idle-node-process.js'), url, String(seconds * 1000)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(node);
    const got = JSON.parse(await new Lines('idle node', node).next(seconds * 1000 + 60_000)) as {
      rssMb: number;
      peakRssMb: number;
      cpuPercent: number;
      seconds: number;
    };
    return {
      name: 'idle_node_rss',
      unit: 'MB',
      value: got.rssMb,
      budget: IDLE_BUDGET.rssMb,
      cpuPercent: got.cpuPercent,
      cpuBudget: IDLE_BUDGET.cpuPercent,
      peakRssMb: got.peakRssMb,
      idleSeconds: got.seconds,
      withinBudget: got.rssMb <= IDLE_BUDGET.rssMb && got.cpuPercent <= IDLE_BUDGET.cpuPercent,
    };
  } finally {
    for (const c of children.reverse()) await stop(c);
  }
}
