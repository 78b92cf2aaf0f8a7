from django.apps import AppConfig


class SimpleCallsConfig(AppConfig):
    name = "simplecalls"
    verbose_name = "SimpleCalls"

    def ready(self):
        from simplecalls import checks  # noqa: F401  (registers the production checks)
