"""The PBX side of bench_load, run as a process of its own: `python -m telephony.management.commands._bench_load_pbx`.

It serves the simulator and, on SIGUSR1, plays the load: `--rate` calls a second for `--seconds`, call i to
extension i mod N, every fifth one missed. Each DialBegin is stamped with time.time() just before the simulator
writes it, so the pop-up's latency runs from the PBX's own event to the operator's socket, on the clock every
process of the host shares. When the last call has ended it writes the calls to `--out` (JSON, renamed into
place) and keeps serving until SIGTERM. No Django: the PBX is not part of the product.
"""

import argparse
import asyncio
import json
import os
import signal
import time

from telephony.simulator import Simulator

USERNAME, SECRET = "bench", "bench-secret"
RING_SECONDS = 2.0
MISSED_RING_SECONDS = 6.0  # the caller gives up
TALK_SECONDS = (5.0, 6.0, 7.0)  # with round robin each phone rings every N / rate s: 10 s at 500 phones and 50/s, so calls never overlap


def plan(index: int, extensions: list[str]) -> dict:
    """Call number `index`: which phone it rings, how, and the disposition the call log must end with."""
    extension = extensions[index % len(extensions)]
    if index % 5 == 4:
        return {"extension": extension, "scenario": "inbound_missed", "ring": MISSED_RING_SECONDS, "talk": 0.0, "disposition": "no_answer"}
    return {"extension": extension, "scenario": "inbound_answered", "ring": RING_SECONDS, "talk": TALK_SECONDS[index % 3], "disposition": "answered"}


async def play(simulator: Simulator, extensions: list[str], rate: float, seconds: float, out: str) -> None:
    rung: dict[str, float] = {}
    dial_begin = simulator.pbx.dial_begin

    def stamped_dial_begin(caller, dest, dial_string):
        rung.setdefault(dest.linkedid, time.time())
        dial_begin(caller, dest, dial_string)

    simulator.pbx.dial_begin = stamped_dial_begin
    total = int(round(rate * seconds))
    loop = asyncio.get_running_loop()
    begin = loop.time()
    calls, placed = [], []
    for index in range(total):
        await asyncio.sleep(max(begin + index / rate - loop.time(), 0.0))
        call = plan(index, extensions)
        started = simulator.start_call(
            call["scenario"], caller=f"7916{index % 10_000_000:07d}", extensions=[call["extension"]], ring=call["ring"], talk=call["talk"],
        )
        calls.append(started)
        placed.append(call | {"linkedid": started.linkedid})
    placing_s = loop.time() - begin
    await asyncio.gather(*(call.wait() for call in calls))
    for call in placed:
        call["dial_begin"] = rung.get(call["linkedid"])
    with open(out + ".part", "w") as file:
        json.dump({"calls": placed, "placing_s": round(placing_s, 3)}, file)
    os.replace(out + ".part", out)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cdr-csv", required=True)
    parser.add_argument("--extensions", required=True, help="comma-separated")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    simulator = Simulator(host="127.0.0.1", port=args.port, username=USERNAME, secret=SECRET, cdr_csv=args.cdr_csv)
    await simulator.start()
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    playing = []
    extensions = args.extensions.split(",")

    def start_playing() -> None:
        if not playing:  # a second signal must not start a second load
            playing.append(loop.create_task(play(simulator, extensions, args.rate, args.seconds, args.out)))
            playing[0].add_done_callback(lambda task: task.cancelled() or task.exception() and print(f"the load failed: {task.exception()!r}", flush=True))

    loop.add_signal_handler(signal.SIGUSR1, start_playing)
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    print(f"serving on 127.0.0.1:{simulator.port}", flush=True)
    await stopped.wait()
    await simulator.stop()


if __name__ == "__main__":
    asyncio.run(main())
