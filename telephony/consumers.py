"""The operator's live channel: their own calls only, pushed as they happen."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from telephony.messages import catch_up_messages
from telephony.presence import PagePresence
from telephony.realtime import operator_group


# What telephony/realtime.py sends an operator's group: each passed on to the page as it is.
LIVE = frozenset({"call.ringing", "call.answered", "call.ended", "call.taken", "call.registered", "originate.status", "calls.pending"})


class OperatorConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        self.group = operator_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.presence = PagePresence(user.pk)  # smart transfer counts an open page as being at the desk
        await self.presence.start()
        for message in await database_sync_to_async(catch_up_messages)(user.pk):
            await self.send_json(message)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if hasattr(self, "presence"):
            await self.presence.stop()

    async def receive_json(self, content, **kwargs):
        """The page only listens; anything it sends is ignored."""

    async def dispatch(self, message):
        """A live message goes straight on to the page.

        Channels' own dispatch first hands every message to its one worker thread to tidy the
        database connections: a burst of pop-ups would queue there one behind another, and none
        of them touches the database.
        """
        if message["type"] in LIVE:
            await self.send_json(message)
        else:
            await super().dispatch(message)
