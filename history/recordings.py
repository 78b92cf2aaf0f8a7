"""Call recordings: the report «Записи разговоров» and the audio, streamed with HTTP Range and audited.

The file is only ever found from the stored `Recording.file` and served only from inside
RECORDINGS_DIR; a listen is recorded once per playback (the request that reads from byte 0).
"""

import datetime
import functools
import ipaddress
import mimetypes
import re
from pathlib import Path
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from clients.models import Client
from history.browse import day_start
from history.forms import shown, with_defaults, year_before
from history.models import Call, Recording, RecordingListen
from history.services import sees_all_calls

PAGE_SIZE = 100
DATE_FORMATS = ["%Y-%m-%d", "%d.%m.%Y"]
# Beyond these a period's bounds could not even be computed (9999-12-31 has no next day).
DATE_LIMITS = [MinValueValidator(datetime.date(2000, 1, 1)), MaxValueValidator(datetime.date(2999, 12, 31))]
AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg", ".gsm": "audio/x-gsm"}
RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")


# -- reads and writes --------------------------------------------------------------------------

def operators_recording(user_id: int) -> Q:
    """`operators_call` seen from a recording: the operator took its call, or their phone rang for it.

    Written on the recording's own join, not as a subquery on the call by id: that form costs the planner
    enough to switch on PostgreSQL's JIT, which alone took 100 ms a page over a million calls.
    """
    return Q(call__operator_id=user_id) | Q(Exists(Call.rung.through.objects.filter(call_id=OuterRef("call_id"), user_id=user_id)))


def recordings_visible_to(user) -> QuerySet[Recording]:
    """The recordings of the calls the user may see: every call for a supervisor, an operator's own otherwise."""
    recordings = Recording.objects.all()
    return recordings if sees_all_calls(user) else recordings.filter(operators_recording(user.pk))


def recordings_report(user, *, since: datetime.date, until: datetime.date, client_id: int | None = None) -> QuerySet[Recording]:
    """The user's recordings of calls started on the days from `since` to `until` (server time), newest first."""
    recordings = recordings_visible_to(user).filter(
        call__started_at__gte=day_start(since), call__started_at__lt=day_start(until + datetime.timedelta(days=1)),
    )
    if client_id:
        recordings = recordings.filter(call__client_id=client_id)
    return recordings.select_related("call__operator", "call__client").order_by("-call__started_at", "-pk")


def recordings_totals(recordings: QuerySet[Recording]) -> dict:
    """How many recordings and their seconds, in one query over all of them."""
    totals = recordings.order_by().aggregate(count=Count("pk"), seconds=Sum("duration"))
    return {"count": totals["count"], "seconds": totals["seconds"] or 0}


@functools.lru_cache(maxsize=8)
def recordings_root(configured: str) -> Path:
    """RECORDINGS_DIR with its symlinks resolved, once: it does not move while the server runs."""
    return Path(configured).resolve()


def recording_path(recording: Recording) -> Path | None:
    """The recording's file if it exists inside RECORDINGS_DIR (symlinks and `..` resolved), else None."""
    name = recording.file
    if not name or "\x00" in name or "://" in name:
        return None
    root = recordings_root(str(settings.RECORDINGS_DIR))
    path = (root / name).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def recording_listen_add(recording: Recording, *, user, address: str | None) -> RecordingListen:
    try:
        address = str(ipaddress.ip_address(address or ""))
    except ValueError:
        address = None
    return RecordingListen.objects.create(recording=recording, file=recording.file, user=user, address=address)


# -- the report --------------------------------------------------------------------------------

class RecordingsForm(forms.Form):
    """The report's period, typed as dd.mm.yyyy or YYYY-MM-DD, and optionally one client."""

    def __init__(self, data):
        super().__init__(data)
        for name, label in (("from", _("Period from")), ("to", _("to"))):
            self.fields[name] = forms.DateField(
                label=label, input_formats=DATE_FORMATS, validators=DATE_LIMITS,
                widget=forms.DateInput(format="%d.%m.%Y", attrs={"placeholder": "дд.мм.гггг", "size": 10}),
            )
        self.fields["client"] = forms.ModelChoiceField(Client.objects.all(), required=False, widget=forms.HiddenInput)

    def clean(self):
        since, until = self.cleaned_data.get("from"), self.cleaned_data.get("to")
        if since and until and since > until:
            self.add_error("to", _("The end of the period is before its start."))
        return self.cleaned_data


@login_required
def recording_list(request):
    """«Записи разговоров»: the recordings of a period (the last year by default), a page of rows and the period's totals."""
    today = timezone.localdate()  # by default, as in the original, the year up to today
    form = RecordingsForm(with_defaults(request.GET, {"from": shown(year_before(today) + datetime.timedelta(days=1)), "to": shown(today)}))
    context = {"form": form, "client": None, "page": None}
    if form.is_valid():
        client = form.cleaned_data["client"]
        recordings = recordings_report(
            request.user, since=form.cleaned_data["from"], until=form.cleaned_data["to"], client_id=client.pk if client else None,
        )
        totals = recordings_totals(recordings)
        paginator = Paginator(recordings, PAGE_SIZE)
        paginator.count = totals["count"]  # the totals' query already counted them
        context |= {"client": client, "totals": totals, "page": paginator.get_page(request.GET.get("page"))}
    return render(request, "history/recording_list.html", context)


# -- the audio ---------------------------------------------------------------------------------

class FileRangeResponse(StreamingHttpResponse):
    """`length` bytes of an open file from `start`, read a block at a time under WSGI and ASGI alike."""

    block_size = 64 * 1024

    def __init__(self, file, start: int, length: int, **kwargs):
        file.seek(start)
        self.file, self.left = file, length
        super().__init__(iter(self.read_block, b""), **kwargs)
        self["Content-Length"] = str(length)

    def read_block(self) -> bytes:
        block = self.file.read(min(self.block_size, self.left))
        self.left -= len(block)
        return block

    async def __aiter__(self):
        # Django's ASGI handler would read a synchronous iterator whole into memory first.
        read = sync_to_async(self.read_block, thread_sensitive=False)
        while block := await read():
            yield block

    def close(self):
        self.file.close()
        super().close()


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte a `Range` header asks for; None for the whole file; ValueError if unsatisfiable.

    A header that is not one plain byte range (another unit, several ranges, nonsense) is ignored, as RFC 9110 allows.
    """
    match = RANGE.fullmatch((header or "").replace(" ", ""))
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise ValueError(header)
        return max(size - count, 0), size - 1
    first, last = int(first), int(last) if last else None
    if last is not None and last < first:
        return None
    if first >= size:
        raise ValueError(header)
    return first, size - 1 if last is None else min(last, size - 1)


def audio_type(path: Path) -> str:
    return AUDIO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@login_required
@require_GET
def recording_audio(request, pk):
    """A recording's bytes (all, or the range asked for), to a user with `history.listen_recording` who may see its call."""
    if not request.user.has_perm("history.listen_recording"):
        raise PermissionDenied
    recording = get_object_or_404(recordings_visible_to(request.user), pk=pk)
    path = recording_path(recording)
    if path is None:
        raise Http404("The recording's file is missing.")
    size = path.stat().st_size
    try:
        wanted = byte_range(request.headers.get("Range"), size)
    except ValueError:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    first, last = wanted or (0, size - 1)
    if first == 0:  # a playback starts here; the requests for the rest of it do not
        recording_listen_add(recording, user=request.user, address=request.META.get("REMOTE_ADDR"))
    if settings.RECORDINGS_ACCEL_PREFIX:
        response = HttpResponse(content_type=audio_type(path))
        relative = path.relative_to(recordings_root(str(settings.RECORDINGS_DIR)))
        response["X-Accel-Redirect"] = settings.RECORDINGS_ACCEL_PREFIX.rstrip("/") + "/" + quote(relative.as_posix())
    else:
        response = FileRangeResponse(path.open("rb"), first, last - first + 1, status=206 if wanted else 200, content_type=audio_type(path))
        response["Accept-Ranges"] = "bytes"
        if wanted:
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Disposition"] = content_disposition_header(False, path.name)
    response["Cache-Control"] = "private, no-cache"
    return response
