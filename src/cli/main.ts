/**
 * `loraplane`: the command line over loraplane's REST API, for engineers at a terminal and for CI pipelines.
 * Results go to stdout (a table, or the API objects with --json); progress and messages go to stderr. Exit codes are
 * fixed (exit-codes.ts, README "The CLI"), so a pipeline can tell a failed job from a refused promotion from a
 * server it cannot reach. Configuration: --url / LORAPLANE_URL, --api-key / LORAPLANE_API_KEY.
 */
import { parseArgs } from 'node:util';
import { ApiClient } from './client';
import { Command, Options } from './command';
import { adapterCommands } from './commands/adapters';
import { adminCommands } from './commands/admin';
import { keyCommands } from './commands/keys';
import { datasetCommands } from './commands/datasets';
import { evalCommands } from './commands/evals';
import { jobCommands } from './commands/jobs';
import { migrateCommands } from './commands/migrate';
import { usageCommands } from './commands/usage';
import { CliError, EXIT } from './exit-codes';

export const commands: Command[] = [...datasetCommands, ...jobCommands, ...adapterCommands, ...evalCommands, ...usageCommands, ...keyCommands, ...migrateCommands, ...adminCommands];

const GLOBAL: Options = { url: { type: 'string' }, 'api-key': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };

function usage(): string {
  const width = Math.max(...commands.map((c) => `${c.name} ${c.args ?? ''}`.length));
  return [
    'usage: loraplane [--url URL] [--api-key KEY] [--json] <command> [arguments] [options]',
    '',
    ...commands.map((c) => `  ${`${c.name} ${c.args ?? ''}`.padEnd(width)}  ${c.summary}`),
    '',
    'environment: LORAPLANE_URL (default http://localhost:8080), LORAPLANE_API_KEY',
    `exit codes: ${EXIT.ok} ok, ${EXIT.error} error, ${EXIT.badInput} bad input, ${EXIT.jobFailed} job failed, ${EXIT.gateNotMet} gate not met, ${EXIT.unreachable} server unreachable, ${EXIT.unauthorized} unauthorized`,
  ].join('\n');
}

/** The command named by the leading words (the longest name that matches wins: `admin pools create` over `admin pools`). */
function findCommand(words: string[]): { command: Command; used: number } | null {
  for (let n = Math.min(3, words.length); n >= 1; n--) {
    const command = commands.find((c) => c.name === words.slice(0, n).join(' '));
    if (command) return { command, used: n };
  }
  return null;
}

export async function runCli(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const loose = parseArgs({ args: argv, options: GLOBAL, strict: false, allowPositionals: true });
  const found = findCommand(loose.positionals);
  if (!found || loose.values.help) {
    const out = usage();
    if (found || loose.values.help || loose.positionals.length === 0) {
      process.stdout.write(`${out}\n`);
      return loose.positionals.length === 0 && !loose.values.help ? EXIT.badInput : EXIT.ok;
    }
    process.stderr.write(`loraplane: unknown command '${loose.positionals.join(' ')}'\n\n${out}\n`);
    return EXIT.badInput;
  }
  const { command, used } = found;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL, ...command.options }, strict: true, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`loraplane ${command.name}: ${(err as Error).message}\n`);
    return EXIT.badInput;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const api = new ApiClient({ url: (values.url as string) ?? env.LORAPLANE_URL ?? 'http://localhost:8080', apiKey: (values['api-key'] as string) ?? env.LORAPLANE_API_KEY });
  const json = values.json === true;
  try {
    const result = await command.run({ api, json, env }, parsed.positionals.slice(used), values);
    process.stdout.write(json ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.text}\n`);
    return result.exitCode ?? EXIT.ok;
  } catch (err) {
    const e = err instanceof CliError ? err : new CliError((err as Error).message, err instanceof Error && /must be a number/.test(err.message) ? EXIT.badInput : EXIT.error);
    if (json) process.stdout.write(`${JSON.stringify({ error: { message: e.message, exit_code: e.exitCode, response: e.body ?? null } }, null, 2)}\n`);
    process.stderr.write(`loraplane ${command.name}: ${e.message}\n`);
    return e.exitCode;
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then((code) => process.exit(code));
}
