from django.core.management.base import BaseCommand, CommandError

from telephony.health import EVENT_WAIT, pbx_check


class Command(BaseCommand):
    help = (
        "The setup self-test: AMI reachable, login, permissions, events, recordings, CDR, listeners; one verdict line "
        "per check (OK/WARN/FAIL) with a fix for each failure. Exits 1 when a check fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--originate-to", metavar="USERNAME", help="also ring this operator's own desk phone (a test call: pick it up)")
        parser.add_argument("--wait", type=float, default=EVENT_WAIT, metavar="SECONDS", help=f"how long to listen for events (default {EVENT_WAIT:g})")

    def handle(self, *args, originate_to=None, wait=EVENT_WAIT, **options):
        failed = 0
        styles = {"OK": self.style.SUCCESS, "WARN": self.style.WARNING, "FAIL": self.style.ERROR}
        for verdict in pbx_check(originate_to=originate_to, wait=wait):
            failed += verdict.failed
            self.stdout.write(verdict.line(), styles.get(verdict.status))
        if failed:
            raise CommandError(f"{failed} check(s) failed", returncode=1)
