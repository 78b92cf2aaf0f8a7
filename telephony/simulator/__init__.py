"""A PBX simulator that speaks AMI over TCP the way Asterisk 18 does (no Django here).

It is the demo's PBX and the tests' PBX: `Simulator(...).start()` listens, greets with
`Asterisk Call Manager/7.0.3`, and answers Login (plain or MD5 Challenge), Logoff, Ping,
Events, ListCommands, Originate, Hangup and CoreShowChannels with Asterisk's exact strings
and limits (docs/AMI.md). Calls produce the event sequences of AMI.md §4–§6, Master.csv
rows (`cdr_csv`) and WAV recordings (`recordings_dir`).

Extra actions, for tests and the demo. They need a logged-in session like any other action;
header names are case-insensitive, and every header is optional.

    Action: SimCall
    Scenario: inbound_answered | inbound_missed | inbound_no_answer | inbound_busy
    Caller: 74957894561          (default)
    CallerName: O'Brien          (default: none, sent as <unknown>)
    Extensions: 100,101          (default 100; dialled in parallel, the first one answers)
    Ring: 1.0                    (seconds before answer / give-up, times time_scale)
    Talk: 2.0                    (seconds of conversation, times time_scale)
    -> Response: Success / Message: Call started / Linkedid: <linkedid>
       at once; the call's events follow.

    Action: SimLoad
    Rate: 100                    (calls started per second, wall-clock)
    Seconds: 5                   (for how long, wall-clock)
    Scenario / Extensions / Ring / Talk as for SimCall
    -> Response: Success / Message: <N> calls started / Calls: <N>
       once the last call has started (calls may still be running). The session
       answers nothing else meanwhile, as with a synchronous Originate.

    Action: SimOutcome
    Exten: 84951234567 | *       (the originate's Exten, i.e. the outside number; * = default)
    Outcome: answered | no_answer | busy | failed          (the outside number's leg)
    ExtensionOutcome: answered | no_answer | busy | failed (the operator's leg; `Extension:` also accepted)
    Ring: 1.0 / Talk: 2.0        (seconds, times time_scale)
    -> Response: Success / Message: Outcome set / Outcome: … / ExtensionOutcome: …
       Settings stay until changed. An operator leg that is not answered ends the
       originate with OriginateResponse Reason 3 (no_answer, after Timeout), 5 (busy) or
       0 (failed: no channel at all). The outside leg gives DialStatus NOANSWER (after
       Timeout), BUSY, or CHANUNAVAIL-style failure (no trunk channel).

    Action: SimDrop
    -> Response: Success / Message: Dropping other sessions, then every other
       connection is closed abruptly (no Logoff).

`python -m telephony.simulator` runs the command line in `cli.py`.
"""

from .server import Simulator

__all__ = ["Simulator"]
