"""A PBX simulator that speaks AMI over TCP the way Asterisk 18 does (no Django here).

It is the demo's PBX and the tests' PBX: `Simulator(...).start()` listens, greets with
`Asterisk Call Manager/7.0.3`, and answers Login (plain or MD5 Challenge), Logoff, Ping,
Events, ListCommands, Originate, Hangup and CoreShowChannels with Asterisk's exact strings
and limits (docs/pbx.md). Calls produce the event sequences of docs/pbx.md §4–§6, Master.csv
rows (`cdr_csv`) and WAV recordings (`recordings_dir`).

Extra actions, for tests and the demo. They need a logged-in session like any other action;
header names are case-insensitive, and every header is optional.

    Action: SimCall
    Scenario: inbound_answered | inbound_missed | inbound_no_answer | inbound_busy
              | inbound_ring_group | inbound_queue | outbound_answered | inbound_smart
    Caller: 74957894561          (default; the outside number: the one dialled, for outbound_answered)
    CallerName: O'Brien          (default: none, sent as <unknown>)
    Extensions: 100,101          (default 100; dialled in parallel, the first one answers)
    Busy: 100                    (ring group and queue only: these members are busy)
    Endpoints: 106=PJSIP/hg63xv,107=SIP/office-front
                                 (the phones of these extensions, for this call, over the
                                 simulator's own `endpoints`; any other extension's is PJSIP/<ext>)
    Ring: 1.0                    (seconds before answer / give-up, times time_scale)
    Talk: 2.0                    (seconds of conversation, times time_scale)
    -> Response: Success / Message: Call started / Linkedid: <linkedid>
       at once; the call's events follow.

    inbound_ring_group: the trunk dials Local/600@ext-group; its ;2 dials every member at
       once through Local/<ext>@from-internal/n pairs, each ;2 dialling the member's phone.
    inbound_queue: the trunk is answered and joins queue `support` (ring-all, docs/pbx.md §6, queues:
       QueueCallerJoin, AgentCalled + DialBegin per member through Local/<ext>@from-queue/n,
       AgentRingNoAnswer for a busy one, QueueCallerLeave, AgentConnect, AgentComplete).
    In both, the members named in Busy refuse at once (DialStatus BUSY on every hop back, cause
    17); the first listed member who is not busy answers after Ring and the others are
    cancelled. If every member is busy the ring group ends BUSY, and the queue keeps the
    caller until Ring has passed. A Hangup action while they ring is the caller giving up
    (the queue then sends QueueCallerAbandon).
    outbound_answered: the first extension's desk phone dials Caller on the trunk
       (Dial(PJSIP/trunk/<number>) from from-internal); the outside party answers after Ring.
    inbound_smart: smart transfer, as deploy/asterisk/extensions.conf plays it (dialplan.py):
       the trunk channel first asks the simulator's `dialplan_url` over HTTP (callerid?number=,
       then route?number=&did=&call=<linkedid>&attempt=0, with `dialplan_token`), sets
       CALLERID(name) from the first answer (NewCallerid), and rings the extension the second
       answered; an empty or failed answer rings Extensions. Then as inbound_answered.

    Action: SimLoad
    Rate: 100                    (calls started per second, wall-clock)
    Seconds: 5                   (for how long, wall-clock)
    Scenario (a plain inbound one) / Extensions / Ring / Talk as for SimCall
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

    An Originate whose Channel is Local/<ext>@click-to-call rings the operator through a
    Local chain: its ;2 dials Local/<ext>@from-internal, whose ;2 dials the operator's phone;
    once answered, the originated ;1 runs Context/Exten and dials Local/<number>@outbound,
    whose ;2 dials PJSIP/trunk/<number>. The outcomes above apply to it as well.

    The Originate's Variable headers (repeated, or `A=1,B=2` in one, as Asterisk reads them) are
    kept. With SIMPLECALLS_DTMF set (`wwww123`), the trunk Dial of either kind of originate plays
    the dialplan's D(${SIMPLECALLS_DTMF}) (docs/pbx.md §4): once the outside party answers, each
    `w` waits 0.5 s (times time_scale), then every digit goes to the trunk channel as DTMFBegin /
    DTMFEnd (Direction: Sent, DurationMs: 100, class dtmf). A hang-up meanwhile stops the rest.

    Action: SimDTMF
    Exten: 84951234567           (required: the outside number, as the originate's Exten)
    -> Response: Success / Message: DTMF received / Exten: … / Digits: 123
       every digit that number has been sent so far ("" for none).

    Action: SimDrop
    -> Response: Success / Message: Dropping other sessions, then every other
       connection is closed abruptly (no Logoff).

`Simulator(endpoints={"106": "PJSIP/hg63xv"})` names the phones every call rings (as
installations name them: `SIP/4411-7`, `SIP/310020005`, `SIP/office-front`), so extension
106 rings `PJSIP/hg63xv-0000001c`. Every call writes a Master.csv row per Party A / Party B
pairing, Local halves included.

`python -m telephony.simulator` runs the command line in `cli.py`.
"""

from .server import Simulator

__all__ = ["Simulator"]
