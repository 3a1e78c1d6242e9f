"""How faithfully does the engine measure? TTFT bias, output-speed error, parsing cost.

    .venv/bin/python bench/fidelity.py            # from the repo root; ~2 minutes
    .venv/bin/python bench/fidelity.py --runs 5   # quicker, noisier

For each wire format a loopback fake provider (devstack/fake_providers.py) streams with
a known schedule: the content-free first chunk at once, the first token ``--ttft-ms``
after the request was read (150), then one token every ``--itl-ms`` (20) up to
``--tokens`` (50). Each round sends one request through ``run_model`` and one through a
bare httpx loop (``iter_raw`` plus a byte-marker search: the least a Python client can
do, i.e. the physical limit here), alternating which goes first.

Reported per format, as medians over the rounds:
- TTFT bias: measured TTFT − configured TTFT (ms). Both clients pay connection setup and
  the request's trip; the engine's extra over the bare loop is its own cost.
- output-speed error: ``output_speed_tps`` (DESIGN §4: output / (total − TTFT)) against
  the schedule's exact value for that formula, N / ((N−1)·itl) — 51.02 tok/s for 50
  tokens at 20 ms; the nominal rate 1/itl is 50 tok/s, and the formula's N/(N−1) is the
  definition's, not a measurement error.
- parsing: the engine's real hot loop (``engine._consume``: SSE framing, JSON, the wire
  format's event handling, timestamps) over a pre-recorded stream of 20,000 chunks fed
  one event per read (as a live stream arrives), timed with ``time.process_time``.

Targets: TTFT bias ≤ 1 ms above the bare loop's; output-speed error within
0.5 percentage points of the bare loop's; parsing ≥ 50,000 chunks/s on one core.
Exit status 1 if a target fails.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from chalicelib.providers import ModelTarget, RunSettings, run_model  # noqa: E402
from chalicelib.providers import engine  # noqa: E402
from devstack.fake_providers import PATH_PREFIXES, Behaviour, FakeProviderServer  # noqa: E402

KINDS = ("openai", "anthropic", "gemini")
API_KEY = "bench-key-not-secret"
SETTINGS = RunSettings(prompt="Tell me a story about a careful benchmark.", max_tokens=512, temperature=0.7)

#: Bytes that appear once in each content chunk of the fake server's streams and never
#: in a content-free one (OpenAI's role chunk has ``"content":""``, Gemini's ``"text":""``).
CONTENT_MARKERS = {
    "openai": b'"delta":{"content":"',
    "anthropic": b'"text_delta"',
    "gemini": b'"text":" ',
}

TTFT_TARGET_MS = 1.0
SPEED_TARGET_PCT = 0.5
PARSE_TARGET_CPS = 50_000.0


@dataclass
class Samples:
    ttft_bias_ms: list[float] = field(default_factory=list)
    speed_err_pct: list[float] = field(default_factory=list)

    def medians(self) -> tuple[float, float]:
        return statistics.median(self.ttft_bias_ms), statistics.median(self.speed_err_pct)


def request_parts(target: ModelTarget) -> tuple[str, dict[str, str], dict]:
    """The same URL, headers and body the engine sends."""
    wire = engine.wire_format(target.kind)
    return wire.build_request(target, SETTINGS, API_KEY)


def bare_once(target: ModelTarget, ttft_s: float, ideal_tps: float) -> tuple[float, float]:
    """A bare httpx read loop: timestamps of reads holding a content marker.

    Like ``run_model``, it makes a fresh client (a new connection) for its request,
    before taking ``t0``.
    """
    url, headers, body = request_parts(target)
    marker = CONTENT_MARKERS[target.kind]
    with httpx.Client(verify=engine._shared_ssl_context()) as client:
        request = client.build_request("POST", url, headers=headers, json=body)
        t0 = time.perf_counter()
        response = client.send(request, stream=True)
        first = None
        tokens = 0
        for raw in response.iter_raw():
            now = time.perf_counter()
            found = raw.count(marker)
            if found:
                tokens += found
                if first is None:
                    first = now
        t_end = time.perf_counter()
        response.close()
    assert first is not None and tokens > 1, "bare loop saw no content"
    ttft = first - t0
    speed = tokens / (t_end - t0 - ttft)
    return (ttft - ttft_s) * 1000.0, (speed - ideal_tps) / ideal_tps * 100.0


def engine_once(target: ModelTarget, ttft_s: float, ideal_tps: float) -> tuple[float, float]:
    result = run_model(target, SETTINGS, API_KEY)
    if not result["success"]:
        raise SystemExit(f"engine run failed: {result['error']}")
    return (
        result["ttft_ms"] - ttft_s * 1000.0,
        (result["output_speed_tps"] - ideal_tps) / ideal_tps * 100.0,
    )


def one_round(target: ModelTarget, ttft_s: float, ideal_tps: float, paired: bool, engine_first: bool) -> tuple[tuple[float, float], tuple[float, float]]:
    """One engine sample and one bare sample, each on its own fresh connection.

    ``paired``: both requests start together (a barrier), so a burst of load from
    other processes on a shared machine hits both alike; the wanted figure is a
    difference, and pairing cancels most of that noise. Otherwise they run one after
    the other, alternating which goes first.
    """
    out: dict[str, tuple[float, float]] = {}
    jobs = [("engine", engine_once), ("bare", bare_once)]
    if not paired:
        for name, fn in jobs if engine_first else jobs[::-1]:
            out[name] = fn(target, ttft_s, ideal_tps)
        return out["engine"], out["bare"]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(name: str, fn: Callable[[ModelTarget, float, float], tuple[float, float]]) -> None:
        try:
            barrier.wait()
            out[name] = fn(target, ttft_s, ideal_tps)
        except BaseException as exc:  # report in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for th in threads if engine_first else threads[::-1]:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return out["engine"], out["bare"]


def record_stream(target: ModelTarget) -> list[bytes]:
    """Record a long stream from the server and cut it into one piece per SSE event."""
    url, headers, body = request_parts(target)
    with httpx.Client(timeout=60) as client:
        data = client.post(url, headers=headers, json=body).content
    events = data.split(b"\n\n")
    pieces = [event + b"\n\n" for event in events if event]
    return pieces


class _Replay:
    """Stands in for an uncompressed httpx response: the engine's loop only reads its
    ``headers`` and ``iter_raw``."""

    headers: dict[str, str] = {}

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def iter_raw(self):
        return iter(self.pieces)


def parse_throughput(kind: str, pieces: list[bytes], repeat: int) -> tuple[float, int]:
    """CPU seconds and content chunks for ``repeat`` passes of the engine's hot loop.

    Calls the engine's private ``_consume`` on purpose: it is exactly the loop
    ``run_model`` runs over a live response, minus the socket.
    """
    wire = engine.wire_format(kind)
    never = lambda: False  # noqa: E731
    far = time.monotonic() + 3600
    limits = engine.provider_limits()
    chunks = 0
    started = time.process_time()
    for _ in range(repeat):
        state = engine.StreamState()
        stream = engine._Stream()
        engine._consume(_Replay(pieces), wire, state, stream, never, far, limits)
        chunks += len(stream.arrivals)
    return time.process_time() - started, chunks


def bare_parse_throughput(kind: str, pieces: list[bytes], repeat: int) -> tuple[float, int]:
    marker = CONTENT_MARKERS[kind]
    chunks = 0
    started = time.process_time()
    for _ in range(repeat):
        for piece in pieces:
            chunks += piece.count(marker)
    return time.process_time() - started, chunks


def _serve(models: dict[str, Behaviour], ports: "multiprocessing.Queue[int]", stop: Any) -> None:
    """Child process: the fake providers, until ``stop`` is set."""
    server = FakeProviderServer(models=models).start()
    ports.put(server.port)
    stop.wait()
    server.stop()


@contextmanager
def provider_server(models: dict[str, Behaviour], in_process: bool) -> Iterator[Callable[[str], str]]:
    """Start the fake providers; yield ``base_url_for``.

    By default in a child process: the server's own Python work (building each chunk's
    JSON) then never competes with the measured clients for this process's GIL.
    """
    if in_process:
        with FakeProviderServer(models=models) as srv:
            yield srv.base_url_for
        return
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    stop = ctx.Event()
    child = ctx.Process(target=_serve, args=(models, ports, stop), daemon=True)
    child.start()
    try:
        port = ports.get(timeout=30)
        yield lambda kind: f"http://127.0.0.1:{port}{PATH_PREFIXES[kind]}"
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.terminate()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="requests per format and client (15)")
    parser.add_argument("--ttft-ms", type=float, default=150.0)
    parser.add_argument("--itl-ms", type=float, default=20.0)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--parse-chunks", type=int, default=20_000, help="chunks in the recorded stream")
    parser.add_argument(
        "--sequential", action="store_true",
        help="run engine and bare requests one after the other instead of paired and concurrent",
    )
    parser.add_argument("--in-process", action="store_true", help="serve from a thread of this process")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    args = parser.parse_args(argv)
    paired = not args.sequential

    ttft_s, itl_s, n = args.ttft_ms / 1000.0, args.itl_ms / 1000.0, args.tokens
    ideal_tps = n / ((n - 1) * itl_s)
    live = Behaviour(ttft_s=ttft_s, itl_s=itl_s, tokens=n, role_chunk=True, usage=True)
    recorded = Behaviour(ttft_s=0.0, itl_s=0.0, tokens=args.parse_chunks, role_chunk=True, usage=True)
    print(
        f"schedule: first token {args.ttft_ms:g} ms after the request (content-free chunk at once), "
        f"then {n} tokens {args.itl_ms:g} ms apart; exact output_speed_tps = {ideal_tps:.2f} tok/s "
        f"(nominal {1 / itl_s:.2f}); {args.runs} rounds per format, "
        f"{'paired (engine and bare started together)' if paired else 'sequential, alternating'}, "
        f"server {'in this process' if args.in_process else 'in a child process'}\n"
    )
    rows: list[str] = []
    checks: list[tuple[str, bool]] = []
    with provider_server({"bench": live, "record": recorded}, args.in_process) as base_url_for:
        for kind in KINDS:
            target = ModelTarget("bench", kind, base_url_for(kind), "bench", f"bench/{kind}")
            one_round(target, ttft_s, ideal_tps, paired, True)  # warm-up: imports, code paths
            eng, bare = Samples(), Samples()
            for i in range(args.runs):
                e_sample, b_sample = one_round(target, ttft_s, ideal_tps, paired, i % 2 == 0)
                for samples, (bias, err) in ((eng, e_sample), (bare, b_sample)):
                    samples.ttft_bias_ms.append(bias)
                    samples.speed_err_pct.append(err)
                if args.verbose:
                    print(f"  {kind} round {i + 1}: engine {e_sample[0]:+.2f} ms {e_sample[1]:+.3f} %, "
                          f"bare {b_sample[0]:+.2f} ms {b_sample[1]:+.3f} %")
            (e_bias, e_err), (b_bias, b_err) = eng.medians(), bare.medians()
            print(f"  {kind}: {args.runs} rounds done", file=sys.stderr, flush=True)

            rec_target = ModelTarget("bench", kind, base_url_for(kind), "record", f"bench/{kind}")
            pieces = record_stream(rec_target)
            cpu, chunks = parse_throughput(kind, pieces, repeat=3)
            b_cpu, b_chunks = bare_parse_throughput(kind, pieces, repeat=3)
            cps = chunks / cpu if cpu > 0 else float("inf")
            b_cps = b_chunks / b_cpu if b_cpu > 0 else float("inf")

            rows.append(
                f"{kind:<10} engine  {e_bias:+8.2f} ms  {e_err:+8.3f} %   "
                f"{cpu / chunks * 1e6:7.2f} ms CPU/1k chunks  {cps:>12,.0f} chunks/s"
            )
            rows.append(
                f"{'':<10} bare    {b_bias:+8.2f} ms  {b_err:+8.3f} %   "
                f"{b_cpu / b_chunks * 1e6:7.2f} ms CPU/1k chunks  {b_cps:>12,.0f} chunks/s"
            )
            checks.append((f"{kind}: TTFT bias engine − bare = {e_bias - b_bias:+.2f} ms (≤ {TTFT_TARGET_MS:g} ms)", e_bias - b_bias <= TTFT_TARGET_MS))
            checks.append((f"{kind}: output-speed error engine − bare = {e_err - b_err:+.3f} pp (within ±{SPEED_TARGET_PCT:g})", abs(e_err - b_err) <= SPEED_TARGET_PCT))
            checks.append((f"{kind}: parsing {cps:,.0f} chunks/s (≥ {PARSE_TARGET_CPS:,.0f})", cps >= PARSE_TARGET_CPS))

    print(f"{'format':<10} client  {'TTFT bias':>11}  {'speed err':>10}   parsing (pre-recorded, one event per read)")
    for row in rows:
        print(row)
    print()
    for text, ok in checks:
        print(f"{verdict(ok)}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
