"""System checks: what production is missing is said before anything starts.

A missing SECRET_KEY with DEBUG off is refused earlier, by the settings themselves (simplecalls.env).
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=False)
def check_production_settings(app_configs, **kwargs):
    if settings.DEBUG:
        return []
    problems = []
    if not settings.ALLOWED_HOSTS:
        problems.append(Error("ALLOWED_HOSTS is empty while DEBUG is off.", hint="Set ALLOWED_HOSTS to the site's host names, comma-separated.", id="simplecalls.E002"))
    if not settings.AMI_SECRET:
        problems.append(Error("AMI_SECRET is not set: the listener and click-to-call cannot log in to the PBX.", hint="Set AMI_USERNAME and AMI_SECRET to a manager.conf user.", id="simplecalls.E003"))
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        problems.append(Warning("DATABASE_URL is not set: production on SQLite loses the concurrent listener writes.", hint="Set DATABASE_URL=postgres://…", id="simplecalls.W001"))
    if not settings.REDIS_URL:
        problems.append(Warning("REDIS_URL is not set: live events reach only the process that produced them.", hint="Set REDIS_URL=redis://…", id="simplecalls.W002"))
    if not settings.DIALPLAN_TOKEN:
        problems.append(Warning("DIALPLAN_TOKEN is not set: the dialplan endpoints refuse every request.", id="simplecalls.W003"))
    return problems
