"""What the client base announces to the apps built on it, which it must not import (history, telephony)."""

from django.dispatch import Signal

# Sent with `phones`, a set of E.164 numbers that clients gained or lost (created, edited, imported),
# inside the transaction that wrote them: history attaches those numbers' earlier calls (late binding).
phones_changed = Signal()
