// Jest's globalTeardown: runs in the main process after the last suite. Jest then exits by itself once nothing is
// left open; a leaked handle (a socket, a timer, a child process) would keep the run alive until CI's limit. This
// timer does not keep the process alive (unref), so it only fires when something else does: it names the problem and
// fails the run instead of hanging it.
const GRACE_MS = Number(process.env.JEST_EXIT_GRACE_MS ?? 30_000);

module.exports = async function exitWatchdog() {
  setTimeout(() => {
    console.error(`[jest] still running ${GRACE_MS / 1000} s after the last suite: an open handle keeps it alive (find it with --detectOpenHandles)`);
    process.exit(1);
  }, GRACE_MS).unref();
};
