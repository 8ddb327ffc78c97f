import { describeFlags } from './args.js';
import { COMMON, type Command } from './command.js';

/**
 * The reference of the `wtd` command as Markdown, made from the commands'
 * own usage, help and flags (docs/cli.md; `wtd help --markdown` prints it).
 * @module
 */

export function cliReference(commands: Readonly<Record<string, Command>>, main: string): string {
  const lines = [
    '# The `wtd` command',
    '',
    "<!-- Made by `npm run docs:cli` from the commands' own help; spec/cli/reference checks it is current. -->",
    '',
    '```text',
    main,
    '```',
  ];
  for (const [name, command] of Object.entries(commands)) {
    lines.push(
      '',
      `## wtd ${name}`,
      '',
      `${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.`,
      '',
      '```text',
      `usage: ${command.usage}`,
      '',
      command.help,
      '```',
      '',
      `Flags: ${
        describeFlags(command.options)
          .map((f) => `\`${f}\``)
          .join(', ') || 'none of its own'
      }; and ${describeFlags(COMMON)
        .map((f) => `\`${f}\``)
        .join(', ')}.`,
    );
  }
  return lines.join('\n');
}
