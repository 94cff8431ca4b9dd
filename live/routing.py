from django.urls import path

from live.consumer import LiveConsumer

websocket_urlpatterns = [path("ws/v1/live", LiveConsumer.as_asgi())]
