"""CDR rows in cdr_csv's Master.csv format (loguniqueid, loguserfield and newcdrcolumns on).

The quoting follows cdr/cdr_csv.c: strings in double quotes with inner quotes doubled,
integers bare, an unset time as an empty unquoted field, and a bare `\\n` line end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
)


@dataclass
class Cdr:
    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    start: float
    answer: float | None
    end: float
    disposition: str
    uniqueid: str
    linkedid: str
    sequence: int
    accountcode: str = ""
    amaflags: str = "DOCUMENTATION"
    userfield: str = ""
    peeraccount: str = ""

    @property
    def duration(self) -> int:
        # cdr.c truncates the millisecond difference to whole seconds.
        return int((self.end - self.start) * 1000) // 1000

    @property
    def billsec(self) -> int:
        if self.answer is None:
            return 0
        return int((self.end - self.answer) * 1000) // 1000


def clid(name: str, number: str) -> str:
    """The clid column as ast_callerid_merge builds it."""
    return f'"{name}" <{number}>'


def _string(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _date(value: float | None) -> str:
    if value is None:
        return ""
    return _string(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)))


def csv_line(cdr: Cdr) -> str:
    parts = [
        _string(cdr.accountcode),
        _string(cdr.src),
        _string(cdr.dst),
        _string(cdr.dcontext),
        _string(cdr.clid),
        _string(cdr.channel),
        _string(cdr.dstchannel),
        _string(cdr.lastapp),
        _string(cdr.lastdata),
        _date(cdr.start),
        _date(cdr.answer),
        _date(cdr.end),
        str(cdr.duration),
        str(cdr.billsec),
        _string(cdr.disposition),
        _string(cdr.amaflags),
        _string(cdr.uniqueid),
        _string(cdr.userfield),
        _string(cdr.peeraccount),
        _string(cdr.linkedid),
        str(cdr.sequence),
    ]
    return ",".join(parts) + "\n"


class CdrWriter:
    """Appends rows to Master.csv, opening and closing the file per write as cdr_csv does."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, rows: list[Cdr]) -> None:
        if not rows:
            return
        with self.path.open("a", encoding="utf-8", newline="") as handle:
            handle.write("".join(csv_line(row) for row in rows))
