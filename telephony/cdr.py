"""Asterisk's call detail records (CDR): read from Master.csv or a CDR table, summed up per call.

`calls_from_cdr` is pure; `read_csv` and `read_table` do the reading. Asterisk 12+ writes one
row per Party A / Party B pairing: a parallel dial gives a row per phone rung, an originate
through a Local channel a row per half, and every row of a call shares its linkedid.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from clients.phones import phone_e164
from telephony.events import OperatorPhones

TAIL_BYTES = 32 * 1024 * 1024
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
BASE_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
                "start", "answer", "end", "duration", "billsec", "disposition", "amaflags")
# cdr_csv adds uniqueid (loguniqueid), userfield (loguserfield), then peeraccount, linkedid, sequence (newcdrcolumns).
OPTIONAL_COLUMNS = {
    16: (),
    17: ("uniqueid",),
    18: ("uniqueid", "userfield"),
    19: ("peeraccount", "linkedid", "sequence"),
    21: ("uniqueid", "userfield", "peeraccount", "linkedid", "sequence"),
}
TABLE_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
                 "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield", "peeraccount",
                 "linkedid", "sequence")
REQUIRED_TABLE_COLUMNS = {"src", "dst", "channel", "dstchannel", "duration", "billsec", "disposition"}


class CdrError(Exception):
    """The CDR source cannot be read as a whole: no such table, a refused connection."""


@dataclass(frozen=True)
class CdrRow:
    accountcode: str
    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    start: datetime
    answer: datetime | None
    end: datetime
    duration: int
    billsec: int
    disposition: str
    amaflags: str
    uniqueid: str = ""
    userfield: str = ""
    peeraccount: str = ""
    linkedid: str = ""
    sequence: int | None = None


@dataclass(frozen=True)
class CdrCall:
    """One call as the CDR tells it, in the terms of `history.Call`."""

    key: str
    direction: str
    phone: str
    extension: str
    disposition: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration: int
    billsec: int


def read_csv(path: str | Path, *, since: datetime | None = None, tz: str,
             tail_bytes: int | None = TAIL_BYTES) -> tuple[list[CdrRow], list[str]]:
    """Rows of a cdr_csv Master.csv, and a `line N: reason` for each malformed line skipped.

    Times are read in the PBX's time zone `tz`. With `since`, rows that started before it are
    skipped and only the last `tail_bytes` of the file are read (all of it with None): reading
    starts at the first whole line there, so calls older than the tail are not seen.
    Each physical line is parsed on its own: a stray quote cannot swallow the lines after it.
    """
    zone = ZoneInfo(tz)
    rows: list[CdrRow] = []
    errors: list[str] = []
    with open(path, "rb") as source:
        size = source.seek(0, 2)
        offset = max(0, size - tail_bytes) if since is not None and tail_bytes is not None else 0
        source.seek(max(0, offset - 1))
        if offset:
            source.readline()   # the rest of the line the tail cuts into
        begin, first_number = source.tell(), None
        for index, raw in enumerate(source):
            if not raw.strip():
                continue
            try:
                row = _csv_row(raw.rstrip(b"\r\n"), zone)
            except ValueError as error:
                if first_number is None:    # counted only when there is something to report
                    first_number = _lines_before(path, begin) + 1
                errors.append(f"line {first_number + index}: {error}")
                continue
            if since is None or row.start >= since:
                rows.append(row)
    return rows, errors


def _csv_row(raw: bytes, zone: ZoneInfo) -> CdrRow:
    if b"\0" in raw:
        raise ValueError("NUL byte in the line")
    try:
        fields = next(csv.reader([raw.decode("utf-8", errors="replace")], strict=True))
    except csv.Error as error:
        raise ValueError(f"bad quoting ({error})") from None
    if len(fields) not in OPTIONAL_COLUMNS:
        raise ValueError(f"{len(fields)} fields, expected 16, 17, 18, 19 or 21")
    values = dict(zip(BASE_COLUMNS + OPTIONAL_COLUMNS[len(fields)], fields))
    start, answer, end = (_csv_time(values, name, zone) for name in ("start", "answer", "end"))
    if start is None or end is None:
        raise ValueError("no start or end time")
    sequence = values.get("sequence", "")
    return CdrRow(
        accountcode=values["accountcode"], src=values["src"], dst=values["dst"], dcontext=values["dcontext"],
        clid=values["clid"], channel=values["channel"], dstchannel=values["dstchannel"], lastapp=values["lastapp"],
        lastdata=values["lastdata"], start=start, answer=answer, end=end,
        duration=_csv_int(values, "duration"), billsec=_csv_int(values, "billsec"),
        disposition=values["disposition"], amaflags=values["amaflags"], uniqueid=values.get("uniqueid", ""),
        userfield=values.get("userfield", ""), peeraccount=values.get("peeraccount", ""),
        linkedid=values.get("linkedid", ""), sequence=_csv_int(values, "sequence") if sequence else None,
    )


def _csv_time(values: dict[str, str], name: str, zone: ZoneInfo) -> datetime | None:
    if not values[name]:
        return None
    try:
        return datetime.strptime(values[name], TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise ValueError(f"{name} is not a time: {values[name]!r}") from None


def _csv_int(values: dict[str, str], name: str) -> int:
    try:
        return int(values[name])
    except ValueError:
        raise ValueError(f"{name} is not a whole number: {values[name]!r}") from None


def _lines_before(path: str | Path, offset: int) -> int:
    count = 0
    with open(path, "rb") as source:
        while offset > 0:
            chunk = source.read(min(offset, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count


def read_table(dsn: str, *, table: str = "cdr", since: datetime | None = None, tz: str) -> list[CdrRow]:
    """Rows of a CDR table in PostgreSQL, read-only: cdr_pgsql's (calldate) or Asterisk's Alembic one (start, end).

    `table` may be `schema.table`. Times without a time zone are read in the PBX's time zone `tz`.
    """
    zone = ZoneInfo(tz)
    schema, _, name = table.rpartition(".")
    try:
        with psycopg.connect(dsn, connect_timeout=10) as connection:
            connection.read_only = True
            types = _column_types(connection, schema, name)
            if not types:
                raise CdrError(f"no table {table}")
            classic = "calldate" in types
            times = ("calldate",) if classic else ("start", "answer", "end")
            missing = (REQUIRED_TABLE_COLUMNS | ({"calldate"} if classic else {"start", "end"})) - types.keys()
            if missing:
                raise CdrError(f"table {table} lacks the CDR columns {', '.join(sorted(missing))}")
            fields = [sql.Identifier(column) if column in types else sql.SQL("NULL AS {}").format(sql.Identifier(column))
                      for column in TABLE_COLUMNS + times]
            source = sql.Identifier(schema, name) if schema else sql.Identifier(name)
            query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(fields), source)
            params: list[datetime] = []
            if since is not None:
                query += sql.SQL(" WHERE {} >= %s").format(sql.Identifier(times[0]))
                naive = types[times[0]] == "timestamp without time zone"
                params.append(since.astimezone(zone).replace(tzinfo=None) if naive else since)
            with connection.cursor(row_factory=dict_row) as cursor:
                records = cursor.execute(query, params).fetchall()
    except psycopg.Error as error:
        message = str(error).strip()
        raise CdrError(message.splitlines()[0] if message else type(error).__name__) from None
    return [row for row in (_table_row(record, zone, classic) for record in records) if row is not None]


def _column_types(connection: psycopg.Connection, schema: str, name: str) -> dict[str, str]:
    records = connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = COALESCE(%s::text, current_schema()) AND table_name = %s",
        [schema or None, name],
    ).fetchall()
    return dict(records)


def _table_row(record: dict, zone: ZoneInfo, classic: bool) -> CdrRow | None:
    duration, billsec = record["duration"] or 0, record["billsec"] or 0
    disposition = record["disposition"] or ""
    if classic:
        # cdr_pgsql keeps only the start (calldate); the rest follows from the durations.
        start = _aware(record["calldate"], zone)
        end = start + timedelta(seconds=duration) if start else None
        answered = billsec > 0 or disposition == "ANSWERED"
        answer = end - timedelta(seconds=billsec) if end and answered else None
    else:
        start, answer, end = (_aware(record[name], zone) for name in ("start", "answer", "end"))
        end = end or (start + timedelta(seconds=duration) if start else None)
    if start is None or end is None:
        return None
    text = {column: "" if record[column] is None else str(record[column])
            for column in TABLE_COLUMNS if column not in ("duration", "billsec", "sequence")}
    return CdrRow(**text, start=start, answer=answer, end=end, duration=duration, billsec=billsec,
                  sequence=record["sequence"])


def _aware(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)


def calls_from_cdr(rows: Iterable[CdrRow], *, region: str, extension_pattern: str,
                   endpoints: Mapping[str, str] | None = None) -> list[CdrCall]:
    """Sum CDR rows up per call: by linkedid, else by uniqueid, else by A channel and start.

    Operators' phones are those in `endpoints` (endpoint → extension), or named after `extension_pattern`.
    """
    phones = OperatorPhones(extension_pattern, endpoints)
    groups: dict[str, list[CdrRow]] = {}
    for row in rows:
        key = row.linkedid or row.uniqueid or f"{row.channel}@{int(row.start.timestamp())}"
        groups.setdefault(key, []).append(row)
    calls = []
    for key, group in groups.items():
        group.sort(key=lambda row: (row.start, row.sequence or 0))
        first = group[0]
        if not first.linkedid and first.channel.startswith("Local/") and first.channel.endswith(";2"):
            continue    # the far half of another call's originate, which has no linkedid to join it by
        calls.append(_call(key, group, region, phones))
    return calls


def _call(key: str, group: list[CdrRow], region: str, phones: OperatorPhones) -> CdrCall:
    first = group[0]
    kind, own_extension = phones.classify(first.channel)
    direction = "in" if kind == "trunk" else "out"
    # The answer that counts: an operator's (an inbound call's) or the outside party's (an outbound one's).
    decisive = [row for row in group if row.dstchannel and _is_decisive(row, direction, phones)]
    # An operator's own phone tells more than the Local channel that rang it (a ring group's, a queue's).
    first_phone = lambda row: (_phone_rung(row, phones) is None, row.answer or row.start)  # noqa: E731
    answered = min((row for row in decisive if row.disposition == "ANSWERED"), key=first_phone, default=None)
    if direction == "in":
        phone = first.src
        rung = answered or min(decisive, key=first_phone, default=first)
        own_extension = (_phone_rung(rung, phones) or phones.classify(rung.dstchannel)[1]) if rung.dstchannel else None
    else:
        phone = (answered or (decisive[0] if decisive else first)).dst
    started_at, ended_at = first.start, max(row.end for row in group)
    return CdrCall(
        key=key, direction=direction, phone=phone_e164(phone, region), extension=own_extension or "",
        disposition=_disposition(answered, {row.disposition for row in decisive} or {row.disposition for row in group}),
        started_at=started_at, answered_at=(answered.answer or answered.start) if answered else None,
        ended_at=ended_at, duration=max(0, int((ended_at - started_at).total_seconds())),
        billsec=answered.billsec if answered else 0,
    )


def _phone_rung(row: CdrRow, phones: OperatorPhones) -> str | None:
    """The extension whose desk phone this row dialled: one the operator table or the pattern knows,
    or any phone dialled by the `;2` half of a Local channel to an extension (`Local/101@from-internal`)."""
    kind, ext = phones.classify(row.dstchannel)
    if kind == "ext":
        return ext
    if kind == "trunk" and row.channel.endswith(";2"):
        return phones.local_extension(row.channel)
    return None


def _is_decisive(row: CdrRow, direction: str, phones: OperatorPhones) -> bool:
    kind, ext = phones.classify(row.dstchannel)
    if direction == "out":
        return kind == "trunk" and _phone_rung(row, phones) is None
    # A Local channel to an extension (a queue member, a ring group) stands for that operator's phone.
    return ext is not None or _phone_rung(row, phones) is not None


def _disposition(answered: CdrRow | None, dispositions: set[str]) -> str:
    """Busy only when every phone dialled refused: one left ringing makes the call a missed one."""
    if answered is not None:
        return "answered"
    if "NO ANSWER" in dispositions:
        return "no_answer"
    if "BUSY" in dispositions:
        return "busy"
    if dispositions & {"FAILED", "CONGESTION"}:
        return "failed"
    return "no_answer"  # e.g. answered by a voice menu, then the caller hung up before any dial
