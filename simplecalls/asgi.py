"""ASGI entry point: Django views over HTTP (the dialplan's two asks answered in front of Django, the others in a
few long-lived threads: simplecalls/web.py), operator events over WebSocket."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simplecalls.settings.base")
django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from django.conf import settings  # noqa: E402

from simplecalls.web import WebHandler, pool_size  # noqa: E402
from telephony.dialplan import dialplan_in_front  # noqa: E402
from telephony.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": dialplan_in_front(WebHandler(min(settings.WEB_THREADS, pool_size() or settings.WEB_THREADS))),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# What is loaded by now lives as long as the server: the collector no longer walks it. Its full passes took 55-65 ms
# here, every live message held meanwhile; they now look at the requests' and sockets' objects alone.
gc.freeze()
