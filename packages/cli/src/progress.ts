// A one-line progress bar redrawn in place on a terminal, with the rate and the time left; nothing on
// pipes and files, where the `progress` events (for library callers) are the only trace.

/** "42 s", "3 min 05 s", "1 h 02 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** "12.3/s" or "4.1 s each", whichever reads as a number above 1. */
export function formatRate(perSecond: number): string {
  if (!(perSecond > 0) || !Number.isFinite(perSecond)) return '';
  return perSecond >= 1 ? `${perSecond.toFixed(perSecond < 10 ? 1 : 0)}/s` : `${(1 / perSecond).toFixed(1)} s each`;
}

export class ProgressBar {
  private last = 0;
  private drawn = false;
  /** The current task: its total, the time and count of its first update, and its last count. */
  private task = { total: -1, t0: 0, done0: 0, last: 0 };

  constructor(
    private readonly stream: NodeJS.WriteStream | { isTTY?: boolean; write(s: string): unknown },
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The text drawn for this update (exposed for tests): label, bar, count, rate and ETA once measurable. */
  line(done: number, total: number, label = ''): string {
    const now = this.now();
    // a new total, or a count going back, is a new task and its rate starts over; the label may change
    // within a task (quantize names each layer)
    if (total !== this.task.total || done < this.task.last) this.task = { total, t0: now, done0: done, last: done };
    this.task.last = done;
    const width = 30;
    const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : 0;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const elapsed = (now - this.task.t0) / 1000;
    const rate = elapsed > 0 ? (done - this.task.done0) / elapsed : 0;
    const tail = rate > 0 && done < total ? ` ${formatRate(rate)}, ${formatDuration((total - done) / rate)} left` : '';
    return `${label} ${bar} ${done}/${total}${tail}`;
  }

  update(done: number, total: number, label = ''): void {
    if (!this.stream.isTTY) return;
    const text = this.line(done, total, label);
    const now = this.now();
    if (done < total && now - this.last < 80) return; // redraw at most ~12 times a second
    this.last = now;
    this.stream.write(`\r\x1b[2K${text}`);
    this.drawn = done < total;
    if (!this.drawn) this.stream.write('\r\x1b[2K');
  }

  /** Erases a bar left on the line (before a message, or at the end of a command). */
  clear(): void {
    if (this.drawn && this.stream.isTTY) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
