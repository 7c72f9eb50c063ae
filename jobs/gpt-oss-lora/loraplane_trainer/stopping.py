"""SIGTERM handling (jobs/CONTRACT.md section 9). Before training (downloading, loading a 120B model) there is no
progress to keep: the trainer says cancelled and exits 143 at once. While training, the signal only sets a flag;
training stops after the current step and checkpoints, and a watchdog makes sure the process exits 143 inside the
grace period even when the checkpoint does not fit (a long step, a slow upload): then it says so and leaves without
one."""

import os
import signal
import threading
import time

from .contract import EXIT

# Leave this much of the grace period for the runtime: exiting at the deadline is too late.
SAFETY_MARGIN_S = 3.0


class StopSignal:
    def __init__(self, grace_seconds, announce):
        self.grace_seconds = grace_seconds
        self.announce = announce
        self.requested_at = None
        self.signal_name = None
        self.training = False  # set by the training callback between on_train_begin and on_train_end

    @property
    def requested(self):
        return self.requested_at is not None

    def install(self):
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, _frame):
        if self.requested:
            return
        self.requested_at = time.monotonic()
        self.signal_name = signal.Signals(signum).name
        if not self.training:
            self.announce(f"received {self.signal_name} before training; stopped")
            os._exit(EXIT["cancelled"])
        budget = max(self.grace_seconds - SAFETY_MARGIN_S, 0.5)
        timer = threading.Timer(budget, self._timeout)
        timer.daemon = True
        timer.start()

    def _timeout(self):
        self.announce(f"received {self.signal_name}; the checkpoint did not fit in the {self.grace_seconds} s grace period")
        os._exit(EXIT["cancelled"])
