/**
 * Live progress and output of a followed task. On a terminal a cli-progress bar stays at the bottom while output
 * lines scroll above it; anywhere else (a pipe, a file, CI) lines are printed as they come and progress as a
 * short line each time it crosses a tenth, so a log is readable and not flooded.
 */
import cliProgress from 'cli-progress';
import type { FollowState } from '../repl/backend.ts';
import type { OutputLine, Progress } from '../task.ts';
import type { Style } from './format.ts';
import { renderLine, renderProgress, renderRetry } from './render.ts';

export interface ProgressView {
  line(line: OutputLine): void;
  progress(progress: Progress): void;
  /** A state change worth a line (a retry). */
  state(state: FollowState): void;
  /** Removes the bar (if any); later writes go straight to the stream. */
  stop(): void;
}

export interface ProgressViewOptions {
  stream: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Draw a bar (only when the stream is a terminal). */
  bar: boolean;
  style: Style;
  /** Shown after the bar. */
  label?: string;
}

/** Why: the same follow code drives a bar for people and plain lines for logs. */
export function createProgressView({ stream, bar, style, label = '' }: ProgressViewOptions): ProgressView {
  return bar ? barView(stream, style, label) : createPlainProgressView((text) => void stream.write(`${text}\n`), style);
}

/** Why: where no bar can be drawn (a pipe, the REPL's prompt), progress is a line per tenth crossed. */
export function createPlainProgressView(writeLine: (text: string) => void, style: Style): ProgressView {
  let lastTenth = -1;
  return {
    line: (line) => writeLine(renderLine(line, style)),
    state: (s) => {
      const text = renderRetry(s);
      if (text) writeLine(style.yellow(text));
    },
    progress: (p) => {
      const tenth = Math.floor(Math.max(0, Math.min(1, p.fraction)) * 10);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      writeLine(style.dim(renderProgress(p)));
    },
    stop: () => {},
  };
}

function barView(stream: NodeJS.WritableStream, style: Style, label: string): ProgressView {
  let multi: cliProgress.MultiBar | undefined;
  let single: cliProgress.SingleBar | undefined;
  let stopped = false;
  const write = (text: string) => {
    if (multi && !stopped) multi.log(`${text}\n`);
    else stream.write(`${text}\n`);
  };
  return {
    line: (line) => write(renderLine(line, style)),
    state: (s) => {
      const text = renderRetry(s);
      if (text) write(style.yellow(text));
    },
    progress: (p) => {
      if (stopped) return;
      const total = p.total ?? 100;
      const value = p.done ?? Math.round(p.fraction * 100);
      if (!single) {
        multi = new cliProgress.MultiBar(
          { stream, format: `{bar} {percentage}% | {value}/{total} ${label}`.trimEnd(), hideCursor: true, clearOnComplete: false, barsize: 30 },
          cliProgress.Presets.shades_classic,
        );
        single = multi.create(total, value);
      } else {
        if (single.getTotal() !== total) single.setTotal(total);
        single.update(value);
      }
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      // log() lines wait for the next redraw: draw once more so the last ones are not lost.
      multi?.update();
      multi?.stop();
    },
  };
}
