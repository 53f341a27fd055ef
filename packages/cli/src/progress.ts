// A one-line progress bar redrawn in place on a terminal; nothing on pipes and files, where the
// `progress` events (for library callers) are the only trace.
export class ProgressBar {
  private last = 0;
  constructor(private readonly stream: NodeJS.WriteStream | { isTTY?: boolean; write(s: string): unknown }) {}

  update(done: number, total: number, label = ''): void {
    if (!this.stream.isTTY) return;
    const now = Date.now();
    if (done < total && now - this.last < 80) return; // redraw at most ~12 times a second
    this.last = now;
    const width = 30;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    this.stream.write(`\r${label} ${bar} ${done}/${total}`);
    if (done >= total) this.stream.write('\r\x1b[2K');
  }
}
