/** Progress on stderr, only when stderr is a terminal (cron mail carries only the summary or the error). */
export interface Progress {
  /** False when nothing will be shown: callers skip work done only for the display. */
  readonly on: boolean
  update(text: string): void
  done(): void
}

export function progress(enabled: boolean): Progress {
  const on = enabled && Boolean(process.stderr.isTTY)
  let last = 0
  return {
    on,
    update(text) {
      if (!on) return
      const now = Date.now()
      if (now - last < 100) return
      last = now
      process.stderr.write(`\r\x1b[K${text}`)
    },
    done() {
      if (on) process.stderr.write('\r\x1b[K')
    },
  }
}

export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`
}
