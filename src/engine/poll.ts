/**
 * When the worker loop's poll claims. A wake (the engine's own enqueue, a freed worker, another process's
 * WAKE_SIGNAL) always claims. A poll claims only when it may find something: another connection committed
 * (a CLI that could not signal, `sqlite3`), a retry became due, or `quietMaxMs` passed since it last
 * looked. An idle engine's poll is then one `PRAGMA data_version`. Pure: the loop gives it the facts.
 */
export class PollGate {
  /** Until then (ms) nothing queued becomes runnable unless another process commits; 0: unknown. */
  private quietUntil = 0

  constructor(private readonly quietMaxMs = 5000) {}

  shouldClaim(p: {woken: boolean; othersCommitted: boolean; at: number}): boolean {
    return p.woken || p.othersCommitted || p.at >= this.quietUntil
  }

  /**
   * After a claim pass at `at`. A poll's pass that found nothing runnable learns when the next retry is due
   * (asked only then: a wake's pass, one per job, asks nothing and leaves the next poll to look).
   */
  claimed(p: {woken: boolean; empty: boolean; at: number; nextRetryAt: () => number | null}): void {
    if (p.woken || !p.empty) {
      this.quietUntil = 0
      return
    }
    this.quietUntil = Math.min(p.nextRetryAt() ?? Number.POSITIVE_INFINITY, p.at + this.quietMaxMs)
  }

  /** A pass that failed: the next poll claims. */
  failed(): void {
    this.quietUntil = 0
  }
}
