/**
 * Tab completion for the REPL, as readline wants it: `(line) => [candidates, the word being completed]`.
 * What is offered depends on the command and the position: command names first, then task names, states,
 * recent task ids, schedule ids, actor addresses or maintenance names. It reads only cached lists, so a Tab
 * never waits on the network.
 */
import { TASK_STATES } from '../task.ts';
import { MAINTENANCE_TASKS } from './backend.ts';
import { COMMANDS, findCommand } from './commands.ts';

export interface CompletionSource {
  taskNames(): readonly string[];
  ids(): readonly string[];
  scheduleIds(): readonly string[];
  actors(): readonly string[];
}

const COMMAND_WORDS = COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? []).filter((a) => /^[a-z]/.test(a))]);
const DEFAULT_ACTORS = ['orchestrator', 'tracker', 'scheduler', 'executor'];

/** Why: the candidates for the word under the cursor, by command and position. */
export function candidatesFor(words: readonly string[], source: CompletionSource): readonly string[] {
  if (words.length <= 1) return COMMAND_WORDS;
  const command = findCommand(words[0]!)?.name;
  const position = words.length - 1;
  switch (command) {
    case 'ps':
      return [...TASK_STATES, ...source.taskNames()];
    case 'run':
    case 'enqueue':
      return position === 1 ? source.taskNames() : [];
    case 'inspect':
    case 'tail':
    case 'cancel':
    case 'retry':
      return position === 1 ? source.ids() : [];
    case 'pause':
    case 'resume':
      if (position === 1) return ['schedule', ...source.taskNames()];
      return position === 2 && words[1] === 'schedule' ? source.scheduleIds() : [];
    case 'trigger':
      if (position === 1) return ['schedule', ...source.scheduleIds()];
      return position === 2 && words[1] === 'schedule' ? source.scheduleIds() : [];
    case 'maint':
      return position === 1 ? MAINTENANCE_TASKS : [];
    case 'restart':
      return position === 1 ? (source.actors().length > 0 ? source.actors() : DEFAULT_ACTORS) : [];
    case 'help':
      return position === 1 ? COMMAND_WORDS : [];
    default:
      return [];
  }
}

/** Why: readline's completer contract over the cached lists; a single match gets its trailing space. */
export function createCompleter(source: CompletionSource): (line: string) => [string[], string] {
  return (line: string) => {
    const words = line.replace(/^\s+/, '').split(/\s+/);
    const current = words[words.length - 1] ?? '';
    const hits = [...new Set(candidatesFor(words, source))].filter((c) => c.startsWith(current));
    // A single match is complete: add the space that separates it from the next word.
    return [hits.length === 1 ? [`${hits[0]} `] : hits, current];
  };
}
