from django.conf import settings
from django.core.management.base import BaseCommand

from telephony.simulator.cli import add_serve_arguments, run_serve


class Command(BaseCommand):
    help = (
        "Run the AMI-speaking PBX simulator. Drive it with `python -m telephony.simulator call|load …` "
        "or the SimCall/SimLoad/SimOutcome actions (see telephony/simulator/__init__.py)."
    )

    def add_arguments(self, parser):
        add_serve_arguments(parser)
        parser.set_defaults(port=settings.AMI_PORT, username=settings.AMI_USERNAME, secret=settings.AMI_SECRET, dialplan_token=settings.DIALPLAN_TOKEN)

    def handle(self, *args, **options):
        from argparse import Namespace

        run_serve(Namespace(**options))
