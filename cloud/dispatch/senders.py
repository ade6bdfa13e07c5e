"""The lifecycle's Sender over the notify channels: one outbox message → one channel send."""

from __future__ import annotations

from collections.abc import Mapping

from cloud.dispatch.ranking import WorkerIndex
from cloud.lifecycle import DeliveryError, OutboundMessage
from cloud.notify import Channel, ChannelError, ChannelKind, Locale, Message, Recipient


class ChannelSender:
    """Sends on the channel the outbox chose; a channel not configured here is a permanent
    failure for that message, so the outbox falls back to the next one (and audits it)."""

    def __init__(self, channels: Mapping[str, Channel], index: WorkerIndex) -> None:
        self._channels = channels
        self.index = index

    async def send(self, message: OutboundMessage) -> str | None:
        channel = self._channels.get(message.channel)
        if channel is None:
            raise DeliveryError(f"channel {message.channel!r} is not configured", retryable=False)
        worker = self.index.worker(message.worker_id)
        if worker is None:
            raise DeliveryError(f"unknown worker {message.worker_id!r}", retryable=False)
        if message.channel == "push" and not worker.push_subscription:
            raise DeliveryError(f"worker {worker.id} has no push subscription", retryable=False)
        recipient = Recipient(
            worker_id=worker.id,
            name=worker.name,
            phone=worker.phone,
            locale=Locale(str(worker.locale)),
            push_subscription=worker.push_subscription,
        )
        outgoing = Message(
            id=message.message_id,
            alarm_id=",".join(str(a) for a in message.alarm_ids),
            recipient=recipient,
            channel=ChannelKind(message.channel),
            text=message.text,
            link=message.link,
            data={"alarm_ids": list(message.alarm_ids)},
        )
        try:
            receipt = await channel.send(outgoing)
        except ChannelError as err:
            raise DeliveryError(
                f"{message.channel}: {err.reason}", retryable=err.retryable
            ) from err
        return receipt.provider_id
