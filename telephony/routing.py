from django.urls import path

from telephony.consumers import OperatorConsumer

websocket_urlpatterns = [
    path("ws/operator/", OperatorConsumer.as_asgi()),
]
