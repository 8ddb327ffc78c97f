import { DataDirLockedError } from '../errors.js';
import { MissionTable, type Catalogued } from '../missions/mission-table.js';
import { DataDirLock } from '../security/data-dir-lock.js';
import { NotFoundError, describeCatalogue, output, readConfig, when, type Command } from './command.js';
import { importModule, loadClasses } from './load-module.js';

/**
 * `wtd missions`: what a node offers, to know what to grant before granting.
 * @module
 */

export const missions: Command = {
  summary: 'what this node offers (or a module file would): each mission, its functions and behaviours',
  usage: 'wtd missions [module file]',
  help: `Lists the missions the node offered when it last started, with each function as
Module/function/arity and each behaviour with the operations it implements, and says
whether the node runs now. With a module file, lists what that module offers (its classes
are loaded, its start function is not run). 'wtd grant --missions' takes these names.`,
  options: {},
  args: { min: 0, max: 1 },
  async run(ctx) {
    const file = ctx.positionals[0];
    if (file !== undefined) {
      const table = new MissionTable();
      const loaded = loadClasses(table, await importModule(file));
      const offer = table.catalogue();
      output(ctx, { file, loaded, missions: offer }, `${file} offers:\n${describeCatalogue(offer)}${next(offer)}`);
      return 0;
    }
    const config = readConfig(ctx.dataDir);
    if (config.offer === undefined) {
      throw new NotFoundError(
        `${config.name} has not started yet, so what it offers is not known`,
        "'wtd start <module file>' runs it; 'wtd missions <module file>' lists what a module offers",
      );
    }
    const running = runningNow(ctx.dataDir);
    output(
      ctx,
      { name: config.name, running, offeredAt: config.offeredAt ?? null, missions: config.offer },
      `${config.name} offers (as it started at ${when(config.offeredAt ?? null)}; ${running ? 'running now' : 'not running now'}):\n` +
        `${describeCatalogue(config.offer)}${next(config.offer)}`,
    );
    return 0;
  },
};

function next(offer: Record<string, Catalogued>): string {
  const names = Object.keys(offer);
  return names.length === 0
    ? ''
    : `\nGrant with: wtd grant --missions ${names.join(',')} --rate 10/s --out friend.grant (or --to friend.card)`;
}

/** Whether a node holds the data directory now. */
export function runningNow(dataDir: string): boolean {
  try {
    DataDirLock.acquire(dataDir).release();
    return false;
  } catch (err) {
    if (err instanceof DataDirLockedError) return true;
    throw err;
  }
}
