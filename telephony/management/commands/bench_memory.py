"""Memory of the listener under calls that never hang up: RSS before, while they are open, and after they are closed."""

import datetime
import gc
import json
import logging

from django.core.management.base import BaseCommand
from django.utils import timezone

from history.models import Call
from telephony.listener import Listener

PREFIX = "bench-memory-"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return round(kilobytes / 1024, 1)


def never_ending_call(number: int, clock: datetime.datetime) -> list[tuple[dict, datetime.datetime]]:
    """An inbound call that starts to ring at extension 100 and is never heard from again."""
    trunk, phone = f"{PREFIX}{number}", f"{PREFIX}{number}.2"
    caller = {"Channel": f"PJSIP/trunk-{number:08x}", "Uniqueid": trunk, "Linkedid": trunk, "CallerIDNum": f"7495{number % 10_000_000:07d}"}
    dest = {"DestChannel": f"PJSIP/100-{number:08x}", "DestUniqueid": phone, "DestLinkedid": trunk}
    return [
        ({"Event": "Newchannel", **caller}, clock),
        ({"Event": "Newchannel", "Channel": dest["DestChannel"], "Uniqueid": phone, "Linkedid": trunk}, clock),
        ({"Event": "DialBegin", **caller, **dest, "DialString": "100"}, clock),
    ]


class Command(BaseCommand):
    help = "Feed the listener calls that never hang up, close them as silent, and print its memory (JSON) after each round."

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=int, default=100_000)
        parser.add_argument("--rounds", type=int, default=2, help="a second round shows freed memory is used again")

    def handle(self, *args, calls, rounds, **options):
        logging.getLogger("telephony.listener").setLevel(logging.WARNING)  # one line per closed call otherwise
        listener = Listener(publish=lambda messages: None)
        figures = {"calls": calls, "rss_before_mb": rss_mb(), "rounds": []}
        try:
            for round_number in range(rounds):
                clock = timezone.now()
                for number in range(round_number * calls, (round_number + 1) * calls):
                    for item in never_ending_call(number, clock):
                        listener.inbox.put(item)
                    if listener.inbox.qsize() > 10_000:  # as the reader thread would, the queue is drained as it fills
                        listener.step(timeout=0)
                while listener.step(timeout=0):
                    pass
                open_mb = rss_mb()
                listener.close_silent(clock + listener.silence + datetime.timedelta(seconds=1))
                listener.flush()
                gc.collect()
                figures["rounds"].append({
                    "rss_with_calls_open_mb": open_mb, "rss_after_closing_mb": rss_mb(),
                    "calls_still_tracked": len(listener.tracker.active()), "calls_awaiting_write": len(listener.dirty),
                    "closed_in_database": Call.objects.filter(linkedid__startswith=PREFIX, ended_at__isnull=False).count(),
                })
        finally:
            Call.objects.filter(linkedid__startswith=PREFIX).delete()
        self.stdout.write(json.dumps(figures))
