"""The operator's live channel: their own calls only, pushed as they happen."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from telephony.messages import catch_up_messages
from telephony.realtime import operator_group


class OperatorConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        self.group = operator_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for message in await database_sync_to_async(catch_up_messages)(user.pk):
            await self.send_json(message)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """The page only listens; anything it sends is ignored."""

    async def call_ringing(self, event):
        await self.send_json(event)

    async def call_answered(self, event):
        await self.send_json(event)

    async def call_ended(self, event):
        await self.send_json(event)

    async def call_taken(self, event):
        await self.send_json(event)

    async def call_registered(self, event):
        await self.send_json(event)

    async def originate_status(self, event):
        await self.send_json(event)

    async def calls_pending(self, event):
        await self.send_json(event)
