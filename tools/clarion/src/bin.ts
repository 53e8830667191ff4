#!/usr/bin/env node
import { NatsServerMissingError } from '@clarion/nats';
import { asyncApiCommand } from './commands/asyncapi.js';
import { controlCommand, exportCommand, reportCommand, sendCommand, watchCommand } from './commands/broadcast.js';
import { CliError, EXIT, type ExitCode, type Io } from './commands/context.js';
import { importCommand, listsCommand, suppressionsCommand } from './commands/lists.js';
import { demoCommand, startCommand } from './commands/run.js';

const USAGE = `Usage: clarion <command> [options]

Run the system:
  start                       NATS, voice-sim and the four services until Ctrl-C (embedded store unless MONGO_URL)
      --cps N                 account calls per second (default 3, Vonage's default)
      --time-scale X          voice-sim call durations × X (default 1)
      --state-dir DIR         NATS data, store journals, logs, runtime.json (default .clarion); one \`start\` per folder
  demo                        a whole broadcast on a sample list on a private system, then the report
      --csv FILE  --country CC  --cps N (default 20)  --json
      --map-phone HEADER      the column holding the phone number (or --map FIELD=HEADER, repeatable)

Contacts:
  lists create NAME [--id ID] create a contact list
  lists list                  lists with their contact counts
  import LIST FILE            upload a CSV/TSV/JSON file into a list, with a progress bar and the import report
      --country CC            country of national-format numbers without one (default: the service's)
      --mode add|upsert|replace
      --map-phone HEADER      the column holding the phone number (or --map FIELD=HEADER, repeatable;
                              fields: phone name firstName lastName country language timezone externalId)
  suppressions add NUMBER...  never call these numbers  [--reason TEXT] [--country CC]
  suppressions list
  suppressions remove NUMBER...  make these numbers callable again

Broadcasts:
  send                        send a broadcast; flags override fields of --file
      -f, --file FILE         the request as JSON or YAML (fields as in README "Request fields")
      --name TEXT  --text TEXT | --audio-url URL  --language en-GB  --repeat N
      --list ID (repeatable)  --number NUMBER (repeatable)  --country CC
      --ack PROMPT            ask the person to press 1 to confirm
      --max-attempts N  --retry-delay SECONDS (0 or more)  --cps N  --priority critical|normal
      --from NUMBER  --idempotency-key KEY
      --watch                 then follow it live until done  [--timeout SECONDS]
  watch ID [--timeout S]      live progress bars per outcome until every contact is final, then the summary
  pause ID | resume ID | cancel ID   [--reason TEXT]
  report [ID]                 one broadcast's summary, or the recent broadcasts  [--limit N]
  export ID                   CSV of the final state per contact  [--type contacts|attempts] [-o, --out FILE]

Docs:
  asyncapi                    print the AsyncAPI document of every NATS subject (docs/asyncapi.yaml)

Every command but start/demo takes:
  --json                      machine-readable output (one JSON line)
  --nats URL                  or CLARION_NATS_URL / NATS_URL
  --token TOKEN               or CLARION_API_TOKEN (write --token=VALUE when the value starts with '-')
  --contacts-url URL          or CLARION_CONTACTS_URL
  --reporter-url URL          or CLARION_REPORTER_URL
  Anything not given is read from .clarion/runtime.json, written by \`npm start\` (or CLARION_RUNTIME_FILE).
  Any value that starts with '-' goes after '=': --retry-delay=-5, --token=-abc…

Exit codes:
  0  success
  1  ran but did not succeed (request refused, broadcast halted or not done in --timeout,
     an import or a send that left out invalid numbers: the rest is imported or called and the
     output lists them; a send where nobody can be called)
  2  bad usage or an invalid request (the message names each bad field)
  3  Clarion cannot be reached, the API token is refused, or a prerequisite (nats-server) is missing
  4  not found (a broadcast, the list given to import, a list named by send --list)
  130  stopped with Ctrl-C (watch: the broadcast keeps running)
`;

type Handler = (args: string[], io: Io) => Promise<ExitCode>;

const COMMANDS: Record<string, Handler> = {
  start: startCommand,
  demo: demoCommand,
  lists: listsCommand,
  import: importCommand,
  suppressions: suppressionsCommand,
  send: sendCommand,
  watch: watchCommand,
  pause: (args, io) => controlCommand('pause', args, io),
  resume: (args, io) => controlCommand('resume', args, io),
  cancel: (args, io) => controlCommand('cancel', args, io),
  report: reportCommand,
  export: exportCommand,
  asyncapi: asyncApiCommand,
};

/** The lines of USAGE about one command (each of its lines with their indented options), or all of it. */
function commandUsage(command: string, withCommonOptions = false): string {
  const lines = USAGE.split('\n');
  const block: string[] = [];
  for (const [at, line] of lines.entries()) {
    if (!(line.startsWith(`  ${command} `) || line.includes(`| ${command} `))) continue;
    block.push(block.length === 0 ? line.trim() : line.trimEnd());
    for (const option of lines.slice(at + 1)) {
      if (!option.startsWith('      ')) break;
      block.push(option.trimEnd());
    }
  }
  if (block.length === 0) return USAGE;
  const common = lines.findIndex((l) => l.startsWith('Every command but start/demo'));
  const commonBlock = withCommonOptions && command !== 'start' && command !== 'demo' && common >= 0
    ? `\n${lines.slice(common, lines.indexOf('', common)).join('\n')}\n`
    : '';
  return `Usage: clarion ${block.join('\n')}\n${commonBlock}\nRun \`clarion help\` for every command, option and exit code.\n`;
}

async function main(argv: string[], io: Io): Promise<ExitCode> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.out.write(USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  const handler = COMMANDS[command];
  if (!handler) {
    io.err.write(`clarion: unknown command "${command}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out.write(commandUsage(command, true));
    return EXIT.ok;
  }
  try {
    return await handler(rest, io);
  } catch (error) {
    // A usage mistake: one line naming it, then how this command is used.
    if (error instanceof CliError && error.exitCode === EXIT.usage) {
      const problem = error.message.replace(/\s*\n\s*/g, ' ');
      io.err.write(`clarion: ${problem}\n\n${commandUsage(command)}`);
      return EXIT.usage;
    }
    throw error;
  }
}

const io: Io = { out: process.stdout, err: process.stderr, env: process.env, cwd: process.cwd() };
main(process.argv.slice(2), io).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof CliError) {
      io.err.write(`clarion: ${error.message}\n`);
      if (error.exitCode === EXIT.usage && !error.message.startsWith('usage:')) io.err.write('Run `clarion help` for the commands and options.\n');
      process.exit(error.exitCode);
    }
    if (error instanceof NatsServerMissingError) {
      io.err.write(`clarion: ${error.message}\n`);
      process.exit(EXIT.unavailable);
    }
    io.err.write(`clarion: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(EXIT.failed);
  },
);
