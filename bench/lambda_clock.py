"""The time a tick Lambda would spend, measured in a process where moto plays DynamoDB.

Wall time is not it: moto answers DynamoDB in the same process, under the same GIL, with
about twice the CPU the tick itself spends per claim (on AWS DynamoDB's servers do that
work), and this machine is shared with other work. So the clock counts what a Lambda with
one vCPU (1,769 MB) would spend: this process's CPU time less moto's, plus the simulated
AWS latency slept divided by the number of parallel workers (as if every wait overlapped
only the other workers' waits, never the CPU work: an upper bound).
"""
from __future__ import annotations

import threading
import time


class MotoTime:
    """CPU seconds moto spends answering requests (thread CPU time, so threads waiting
    for moto's lock or the GIL add nothing), summed over every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds = 0.0
        self.installed = False

    def install(self) -> None:
        """Wrap moto's request handler (once per process)."""
        from moto.core.botocore_stubber import BotocoreStubber

        if self.installed:
            return
        self.installed = True

        original = BotocoreStubber.process_request
        meter = self

        def process_request(stubber, request):
            began = time.thread_time()
            try:
                return original(stubber, request)
            finally:
                spent = time.thread_time() - began
                with meter.lock:
                    meter.seconds += spent

        BotocoreStubber.process_request = process_request


MOTO = MotoTime()


class LambdaClock:
    """Seconds since `start()` on the tick Lambda's clock (see the module docstring)."""

    def __init__(self, parallel: int) -> None:
        self.parallel = parallel
        self.lock = threading.Lock()
        self.slept = 0.0
        self.start()

    def wait(self, ms: float) -> None:
        """Simulated AWS latency: sleep, and count it."""
        time.sleep(ms / 1000)
        with self.lock:
            self.slept += ms / 1000

    def start(self) -> None:
        self._cpu, self._moto, self._slept, self._wall = time.process_time(), MOTO.seconds, self.slept, time.perf_counter()

    def cpu(self) -> float:
        """The tick's own CPU seconds since `start()`."""
        return (time.process_time() - self._cpu) - (MOTO.seconds - self._moto)

    def elapsed(self) -> float:
        return self.cpu() + (self.slept - self._slept) / self.parallel

    def moto(self) -> float:
        return MOTO.seconds - self._moto

    def wall(self) -> float:
        return time.perf_counter() - self._wall
