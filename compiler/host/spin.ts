/**
 * Polls `words[index]` while it holds `value`, for at most `budgetMs`, and says whether it changed. A threaded run's
 * threads poll before they sleep in Atomics.wait: a futex wake-up costs tens of µs here, a run's last step less.
 */
export function spinWhile(words: Int32Array, index: number, value: number, budgetMs: number): boolean {
  const until = performance.now() + budgetMs;
  for (let i = 1; ; i++) {
    if (Atomics.load(words, index) !== value) return true;
    // the clock costs more than a poll
    if ((i & 63) === 0 && performance.now() > until) return false;
  }
}
