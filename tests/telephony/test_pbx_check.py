"""`pbx_check` and the admin's «PBX check» page: the simulator over TCP, real listeners, the database."""

import io
import re
import socket

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from telephony.heartbeat import listener_heartbeats, listener_lease
from telephony.leader import Lease
from telephony.listener import Listener
from tests.helpers import wait_for
from tests.telephony.conftest import SECRET, USERNAME, RunningListener, running_simulator

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pbx(simulator, settings, tmp_path):
    """Settings pointing at the simulator, with its recordings directory and CDR file."""
    settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET = "127.0.0.1", simulator.port, USERNAME, SECRET
    settings.RECORDINGS_DIR = tmp_path / "recordings"
    settings.RECORDINGS_DIR.mkdir()
    settings.CDR_CSV, settings.CDR_DSN = str(tmp_path / "Master.csv"), ""
    (tmp_path / "Master.csv").touch()  # a PBX that has had no call yet
    return simulator


@pytest.fixture
def leader_and_standby(pbx, operators):
    config = pbx.config()
    listeners = [RunningListener(config, Listener(lease=Lease(config.address, ttl=3))) for _ in range(2)]
    wait_for(lambda: listener_lease(config.address) is not None and listener_lease(config.address).held)
    # Both step, and the leader has heard an event (FullyBooted at its login, at least).
    wait_for(lambda: sum(bool(beat["stepped"] and beat["last_event"]) for beat in listener_heartbeats(config.address)) == 2)
    yield listeners
    for listener in listeners:
        listener.close()


def check(*args) -> tuple[list[str], bool]:
    """pbx_check's lines (in English) and whether it exited with status 1."""
    out = io.StringIO()
    failed = False
    with translation.override("en"):
        try:
            call_command("pbx_check", "--wait", "0.3", *args, stdout=out)
        except CommandError as error:
            assert error.returncode == 1
            failed = True
    return out.getvalue().splitlines(), failed


def verdict(lines: list[str], what: str) -> str:
    return next(line for line in lines if line.split(maxsplit=1)[1].startswith(what + ":"))


def test_a_good_setup_passes_every_check(pbx, leader_and_standby):
    pbx.call("inbound_answered", extensions=["100"])  # events for the listeners, a CDR row, a recording
    wait_for(lambda: any(beat["batches"] for beat in listener_heartbeats(pbx.config().address)))  # the leader wrote it, and said so

    lines, failed = check()

    assert [line.split(":")[0] for line in lines] == [
        "OK    AMI reachable", "OK    AMI login", "OK    AMI permissions", "OK    AMI events", "OK    Recordings directory",
        "OK    CDR source", "OK    Listener, leading", "OK    Listener, standby",
    ]
    assert not failed
    assert "rows in the last 24 hours" in verdict(lines, "CDR source")
    events, batches = re.search(r"Since it started: AMI events — (\d+), write transactions — (\d+)\.", verdict(lines, "Listener, leading")).groups()
    assert int(events) > 0 and int(batches) > 0, "the leader has heard the call and written it"


def test_wrong_credentials_fail_the_login_with_the_fix_and_exit_1(pbx, settings):
    settings.AMI_SECRET = "not-the-secret"

    lines, failed = check()

    login = verdict(lines, "AMI login")
    assert login.startswith("FAIL") and "Authentication failed" in login
    assert "fix AMI_USERNAME/AMI_SECRET" in login and "manager.conf" in login
    assert verdict(lines, "AMI checks").startswith("SKIP  AMI checks: permissions and events not checked")
    assert failed


def test_a_user_without_originate_fails_the_permissions_naming_originate(settings, tmp_path):
    with running_simulator(time_scale=0.01, read_classes="call,dialplan", write_classes="reporting") as limited:
        settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET = "127.0.0.1", limited.port, USERNAME, SECRET
        lines, failed = check()

    permissions = verdict(lines, "AMI permissions")
    assert permissions.startswith("FAIL")
    assert "Originate (write = originate)" in permissions and "CoreShowChannels" not in permissions.partition("Fix:")[0]
    assert "write = originate,reporting" in permissions
    assert failed


def test_a_user_without_reporting_cannot_list_channels(settings):
    with running_simulator(time_scale=0.01, write_classes="originate") as limited:
        settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET = "127.0.0.1", limited.port, USERNAME, SECRET
        lines, _ = check()

    assert "may not run CoreShowChannels (write = reporting)" in verdict(lines, "AMI permissions")


def test_no_pbx_fails_reachable_and_skips_the_ami_checks_with_one_line(settings, tmp_path):
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", closed_port()
    settings.RECORDINGS_DIR = tmp_path

    lines, failed = check()

    assert lines[0].startswith("FAIL  AMI reachable") and "Connection refused" in lines[0] and "AMI_HOST and AMI_PORT" in lines[0]
    assert lines[1].startswith("SKIP  AMI checks: login, permissions and events not checked")
    assert not any(line.split(":")[0].endswith(("AMI login", "AMI permissions", "AMI events")) for line in lines)
    assert verdict(lines, "Recordings directory").startswith("OK"), "the checks that need no PBX still run"
    assert verdict(lines, "Listener, leading").startswith("FAIL")
    assert failed


def test_a_missing_recordings_directory_and_cdr_file_fail_with_their_fixes(pbx, settings, tmp_path):
    settings.RECORDINGS_DIR = tmp_path / "nowhere"
    settings.CDR_CSV = str(tmp_path / "no-such.csv")

    lines, failed = check()

    assert verdict(lines, "Recordings directory").startswith("FAIL") and "does not exist" in verdict(lines, "Recordings directory")
    assert "Master.csv" in verdict(lines, "CDR source") and verdict(lines, "CDR source").startswith("FAIL")
    assert failed


def test_without_a_standby_the_check_warns_but_passes(pbx, operators):
    config = pbx.config()
    only = RunningListener(config, Listener(lease=Lease(config.address, ttl=3)))
    try:
        wait_for(lambda: listener_lease(config.address) is not None and listener_lease(config.address).held)
        lines, _ = check()
    finally:
        only.close()

    assert verdict(lines, "Listener, leading").startswith("OK")
    assert verdict(lines, "Listener, standby").startswith("WARN")


def test_a_listener_gone_quiet_leaves_an_expired_lease_and_fails(pbx, operators):
    config = pbx.config()
    gone = RunningListener(config, Listener(lease=Lease(config.address, ttl=3)))
    wait_for(lambda: listener_lease(config.address) is not None and listener_lease(config.address).held)
    gone.close()  # it lets the lease go as it stops

    lines, failed = check()

    assert verdict(lines, "Listener, leading").startswith("FAIL  Listener, leading: no listener leads")
    assert "pbx_listen" in verdict(lines, "Listener, leading")
    assert failed


def test_the_test_originate_rings_the_operators_phone_and_sees_the_events(pbx, leader_and_standby):
    lines, failed = check("--originate-to", "operator1")

    originate = lines[-1]
    assert originate.startswith("OK    Test originate:") and "Local/100@from-internal" in originate
    assert "classes call, dialplan came" in originate and "recorded call" not in originate
    assert not failed


def test_the_test_originate_passes_on_call_events_alone_as_the_shipped_eventfilter_sends_them(settings, tmp_path, operators):
    # deploy/asterisk/manager.conf lets through no dialplan event but a recording's VarSet: a test call without one has none.
    with running_simulator(time_scale=0.01, read_classes="call", write_classes="originate,reporting") as filtered:
        settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET = "127.0.0.1", filtered.port, USERNAME, SECRET
        lines, _ = check("--originate-to", "operator1")

    originate = verdict(lines, "Test originate")
    assert originate.startswith("OK    Test originate:") and "classes call came" in originate
    assert "comes only with a recorded call" in originate


def test_the_test_originate_fails_when_no_call_event_comes(settings, tmp_path, operators):
    with running_simulator(time_scale=0.01, read_classes="dialplan", write_classes="originate,reporting") as deaf:
        settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET = "127.0.0.1", deaf.port, USERNAME, SECRET
        lines, failed = check("--originate-to", "operator1")

    originate = verdict(lines, "Test originate")
    assert originate.startswith("FAIL") and "read = call" in originate
    assert failed


def test_the_test_originate_to_someone_without_an_extension_fails(pbx, django_user_model):
    django_user_model.objects.create_user("visitor")

    lines, failed = check("--originate-to", "visitor")

    assert lines[-1].startswith("FAIL  Test originate: visitor is not an operator")
    assert failed


def test_the_test_originate_that_nobody_answers_warns(pbx, leader_and_standby, settings):
    settings.ORIGINATE_RING_SECONDS = 1
    pbx.run(_operator_leg(pbx, "no_answer"))

    lines, _ = check("--originate-to", "operator1")

    assert lines[-1].startswith("WARN  Test originate:") and "not answered" in lines[-1]


async def _operator_leg(pbx, outcome):
    pbx.simulator.engine.set_outcome("*", extension=outcome, ring=0.5)


# -- the admin page ---------------------------------------------------------------------------


def test_the_admin_page_is_for_staff_only(client, django_user_model, settings):
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", closed_port()
    url = "/admin/telephony/operator/check/"
    assert client.get(url).status_code == 302, "anonymous: to the admin's login"
    client.force_login(django_user_model.objects.create_user("operator9"))
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"], "an operator is not staff"


def test_the_admin_page_shows_the_checklist_and_links_from_the_operators(admin_client, pbx, leader_and_standby):
    with translation.override("en"):
        response = admin_client.get("/admin/telephony/operator/check/", HTTP_ACCEPT_LANGUAGE="en")
        changelist = admin_client.get("/admin/telephony/operator/")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('data-status="OK"') == 8 and 'data-failed="0"' in page
    assert "/admin/telephony/operator/check/" in changelist.content.decode()


def test_the_test_originate_on_the_admin_page_is_a_post_with_csrf(pbx, leader_and_standby, django_user_model):
    from django.test import Client

    from telephony.models import Operator

    admin = django_user_model.objects.create_superuser("root", password="root-pass-1")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)
    operator = Operator.objects.get(extension="100")
    url = "/admin/telephony/operator/check/"

    assert browser.post(url, {"operator": operator.pk}).status_code == 403, "no CSRF token, no call"
    token = browser.get(url).cookies["csrftoken"].value
    response = browser.post(url, {"operator": operator.pk, "csrfmiddlewaretoken": token})

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-status="OK"') == 9 and 'data-failed="0"' in page, "the eight checks and the test originate"
