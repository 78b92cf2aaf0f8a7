"""deploy/ checked: the systemd units (systemd-analyze verify), the nginx site (nginx -t, then a
real nginx in front of a stand-in web process), the example settings file against the settings
the code reads, and manager.conf against the AMI actions the code sends and the events it reads."""

from __future__ import annotations

import configparser
import ctypes
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings

from telephony import events
from tests.conftest import needs
from tests.helpers import AMI_FIXTURES, wait_for

ROOT = Path(settings.BASE_DIR)
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
SITE = DEPLOY / "nginx" / "simplecalls.conf"
ENV_EXAMPLE = DEPLOY / "simplecalls.env.example"
MANAGER_CONF = DEPLOY / "asterisk" / "manager.conf"
INSTALL_DIR = "/opt/simplecalls"
# One instance of each template unit, as deploy/README.md enables them.
INSTANCES = {"simplecalls-web@.service": "8001", "simplecalls-listener@.service": "1"}
SERVICES = sorted(path.name for path in UNITS.glob("*.service"))


def tool(name: str) -> str | None:
    """A program from Debian's packages; /usr/sbin is not on every user's PATH."""
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None)


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string(_joined_duplicates((UNITS / name).read_text()))
    return parser


def _joined_duplicates(text: str) -> str:
    """systemd repeats keys (SystemCallFilter=); configparser does not: number the repeats."""
    seen: dict[tuple[str, str], int] = {}
    section, lines = "", []
    for line in text.splitlines():
        if line.startswith("["):
            section = line
        elif "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            count = seen[(section, key)] = seen.get((section, key), 0) + 1
            if count > 1:
                line = f"{key}#{count}={value}"
        lines.append(line)
    return "\n".join(lines)


# --- systemd -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_restarts_reads_the_settings_and_is_hardened(name):
    service = unit(name)["Service"]
    assert service["Restart"] in {"always", "on-failure"} and float(service["RestartSec"]) > 0
    assert service["EnvironmentFile"] == "/etc/simplecalls/simplecalls.env"
    assert service["User"] == "simplecalls" and service["WorkingDirectory"] == INSTALL_DIR
    assert service["ExecStart"].startswith(f"{INSTALL_DIR}/.venv/bin/")
    hardening = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet": "", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native", "UMask": "0027",
    }
    assert {key: service.get(key) for key in hardening} == hardening
    # Nothing may be writable but the timer's own state directory.
    assert "ReadWritePaths" not in service
    assert ("StateDirectory" in service) == (name == "simplecalls-beat.service")
    assert unit(name)["Unit"]["PartOf"] == "simplecalls.target"
    assert unit(name)["Install"]["WantedBy"] == "simplecalls.target"


def test_only_the_web_processes_take_a_database_pool():
    for name in SERVICES:
        environment = unit(name)["Service"].get("Environment", "") + unit(name)["Service"].get("Environment#2", "")
        assert ("DATABASE_POOL_SIZE=" in environment) == name.startswith("simplecalls-web@"), name
    # daphne must take the browser's address and scheme from nginx's headers.
    assert "--proxy-headers" in unit("simplecalls-web@.service")["Service"]["ExecStart"]


def test_systemd_analyze_verifies_the_units(tmp_path):
    """Each unit as installed, its /opt/simplecalls made this checkout, so the programs it starts are checked too."""
    analyze = tool("systemd-analyze")
    needs(analyze is not None, "systemd-analyze is not installed (apt-get install systemd)")
    venv = ROOT / ".venv" / "bin"
    needs(all((venv / program).exists() for program in ("python", "daphne", "celery")), f"no virtual environment at {venv}")
    paths = []
    for source in sorted(UNITS.iterdir()):
        rendered = source.read_text().replace(INSTALL_DIR, str(ROOT))
        (tmp_path / source.name).write_text(rendered)
        name = source.name.replace("@.", f"@{INSTANCES[source.name]}.") if source.name in INSTANCES else source.name
        if name != source.name:
            (tmp_path / name).write_text(rendered)
        paths.append(str(tmp_path / name))
    result = subprocess.run([analyze, "verify", "--man=no", *paths], capture_output=True, text=True, timeout=120)
    # verify exits 0 on an unknown key or a bad value, only saying so: any word about our units fails.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "simplecalls" in line or str(tmp_path) in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


# --- nginx ---------------------------------------------------------------------------------------


def render_site(directory: Path, *, http_port: int | None = None, https_port: int | None = None, upstream: int | None = None) -> Path:
    """The site with its certificate, logs, static files and recordings in `directory`; ports changed when given."""
    site = SITE.read_text()
    site = site.replace("/etc/ssl/simplecalls/", f"{directory}/tls/").replace("/var/log/nginx/", f"{directory}/logs/")
    site = site.replace(f"{INSTALL_DIR}/staticfiles/", f"{directory}/static/").replace("/var/spool/asterisk/monitor/", f"{directory}/recordings/")
    if http_port:
        site = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", site)  # a test machine may lack IPv6
        site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};").replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
        site = re.sub(r"server 127\.0\.0\.1:\d+;\n", "", site).replace("least_conn;", f"least_conn;\n    server 127.0.0.1:{upstream};")
    for sub in ("tls", "logs", "static/js", "recordings/2025/03/01", "temp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    subprocess.run([tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=crm.example.ru",
                    "-keyout", str(directory / "tls/privkey.pem"), "-out", str(directory / "tls/fullchain.pem")],
                   check=True, capture_output=True, timeout=60)
    (directory / "site.conf").write_text(site)
    mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else "types { application/javascript js; audio/wav wav; }"
    temp = "\n".join(f"    {kind}_temp_path {directory}/temp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = directory / "nginx.conf"
    conf.write_text(f"worker_processes 1;\ndaemon off;\nerror_log {directory}/logs/error.log;\npid {directory}/nginx.pid;\n"
                    f"events {{}}\nhttp {{\n    {mime}\n    access_log {directory}/logs/access.log;\n{temp}\n"
                    f"    include {directory}/site.conf;\n}}\n")
    return conf


def nginx_command(conf: Path) -> list[str]:
    return [tool("nginx"), "-p", str(conf.parent), "-c", str(conf), "-e", str(conf.parent / "logs/error.log")]


def needs_nginx():
    needs(tool("nginx") is not None, "nginx is not installed (apt-get install nginx)")
    needs(tool("openssl") is not None, "openssl is not installed (apt-get install openssl)")


def test_nginx_accepts_the_site(tmp_path):
    needs_nginx()
    result = subprocess.run([*nginx_command(render_site(tmp_path)), "-t"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr


class StandIn(BaseHTTPRequestHandler):
    """A web process in daphne's place: answers with what it was sent, and a recording as SimpleCalls does."""

    def do_GET(self):
        if self.path.startswith("/history/recordings/"):
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("X-Accel-Redirect", "/protected-recordings/2025/03/01/%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA%201.wav")
            self.end_headers()
            return
        body = json.dumps({"path": self.path, "headers": {key.lower(): value for key, value in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def nginx_in_front():
    """nginx running the site on free ports, in front of a stand-in; yields (http port, https port, directory)."""
    needs_nginx()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    # nginx's workers may run as nobody: the directory must be theirs to read.
    with tempfile.TemporaryDirectory(prefix="simplecalls-nginx-") as name:
        directory = Path(name)
        os.chmod(directory, 0o755)
        http_port, https_port = free_port(), free_port()
        conf = render_site(directory, http_port=http_port, https_port=https_port, upstream=upstream.server_address[1])
        (directory / "static/js/operator.js").write_text("operator();\n")
        (directory / "recordings/2025/03/01/звонок 1.wav").write_bytes(b"RIFF" + bytes(96))
        for path in directory.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        server = subprocess.Popen(nginx_command(conf), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 15
            while True:
                assert server.poll() is None, server.stderr.read().decode()
                try:
                    socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)
            yield http_port, https_port, directory
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            upstream.shutdown()
            upstream.server_close()


def fetch(port: int, path: str, *, tls: bool = True, headers: dict | None = None) -> tuple[int, dict, bytes]:
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": "crm.example.ru", **(headers or {})})
        response = connection.getresponse()
        return response.status, {key.lower(): value for key, value in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_nginx_passes_the_browsers_address_and_scheme_never_one_it_made_up(nginx_in_front):
    _, https_port, _ = nginx_in_front
    status, _, body = fetch(https_port, "/clients/", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"})
    sent = json.loads(body)["headers"]
    assert status == 200
    assert sent["x-forwarded-for"] == "127.0.0.1" and sent["x-forwarded-proto"] == "https"
    assert sent["host"] == "crm.example.ru"
    # A plain request keeps the upstream connection open; a WebSocket's asks for the upgrade.
    assert sent.get("connection", "") == "" and "upgrade" not in sent
    _, _, body = fetch(https_port, "/ws/operator/", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    sent = json.loads(body)["headers"]
    assert sent["upgrade"] == "websocket" and sent["connection"] == "upgrade"


def test_nginx_sends_recordings_only_after_simplecalls_said_so(nginx_in_front):
    _, https_port, directory = nginx_in_front
    status, headers, body = fetch(https_port, "/history/recordings/7/audio/", headers={"Range": "bytes=0-3"})
    assert (status, body, headers["content-range"]) == (206, b"RIFF", "bytes 0-3/100")
    assert "x-accel-redirect" not in headers
    assert fetch(https_port, "/protected-recordings/2025/03/01/%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA%201.wav")[0] == 404


def test_nginx_redirects_to_https_but_lets_the_dialplan_ask_over_http(nginx_in_front):
    http_port, _, directory = nginx_in_front
    status, headers, _ = fetch(http_port, "/clients/?q=1", tls=False)
    assert status == 301 and headers["location"] == "https://crm.example.ru/clients/?q=1"
    status, _, body = fetch(http_port, "/telephony/dialplan/route?number=84957894561&token=sekret-token", tls=False)
    assert status == 200 and json.loads(body)["path"].endswith("token=sekret-token")
    logs = lambda: "".join(path.read_text() for path in (directory / "logs").glob("*.log"))  # noqa: E731
    wait_for(lambda: "/telephony/dialplan/route" in logs(), timeout=5)  # written once the request is over
    assert "sekret-token" not in logs()


def test_nginx_serves_static_files_with_a_short_cache(nginx_in_front):
    _, https_port, _ = nginx_in_front
    status, headers, body = fetch(https_port, "/static/js/operator.js")
    assert (status, body) == (200, b"operator();\n") and headers["cache-control"] == "max-age=3600"


# --- the settings file ---------------------------------------------------------------------------

SETTINGS_SOURCES = [ROOT / "simplecalls" / "env.py", *sorted((ROOT / "simplecalls" / "settings").glob("*.py"))]
TEST_ONLY = {"STRICT"}  # simplecalls/settings/test.py: the test runs, never a deployment
ENV_READS = [
    re.compile(r"\b(?:env|environ)\.get\(\s*\"([A-Z][A-Z0-9_]*)\""),
    re.compile(r"\b(?:env|environ)\[\s*\"([A-Z][A-Z0-9_]*)\""),
    re.compile(r"\(\s*(?:env|environ)\s*,\s*\"([A-Z][A-Z0-9_]*)\""),  # env_int(env, "AMI_PORT", …) and the like
]
ASSIGNMENT = re.compile(r"^#?([A-Z][A-Z0-9_]*)=(.*)$")


def variables_read() -> set[str]:
    names = set()
    for path in SETTINGS_SOURCES:
        for pattern in ENV_READS:
            names.update(pattern.findall(path.read_text()))
    return names - TEST_ONLY


def example_values(text: str) -> dict[str, str]:
    """KEY=value lines, the commented-out defaults too, read as systemd reads them."""
    values = {}
    for line in text.splitlines():
        if match := ASSIGNMENT.match(line.strip()):
            value = match[2].strip()
            values[match[1]] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else value
    return values


def test_the_settings_are_read_where_this_test_looks():
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "DATABASE_POOL_SIZE", "EXTENSION_PATTERN", "SECURE_COOKIES", "PHONE_REGION"} <= variables_read()


def test_the_example_names_every_variable_the_settings_read_and_no_other():
    named = set(example_values(ENV_EXAMPLE.read_text()))
    assert variables_read() - named == set(), "add them to deploy/simplecalls.env.example"
    assert named - variables_read() == set(), "the settings read no such variable"


def test_the_example_reads_the_same_in_the_shell_and_is_accepted_by_the_settings(tmp_path):
    """Every line, defaults uncommented, as `sc` sources it; then the settings load from it."""
    values = example_values(ENV_EXAMPLE.read_text())
    uncommented = tmp_path / "simplecalls.env"
    uncommented.write_text("\n".join(line.strip().lstrip("#") for line in ENV_EXAMPLE.read_text().splitlines() if ASSIGNMENT.match(line.strip())) + "\n")
    shell = subprocess.run(["sh", "-c", f'set -a; . "{uncommented}"; set +a; exec "{sys.executable}" -c "import json, os; print(json.dumps(dict(os.environ)))"'],
                           capture_output=True, text=True, timeout=30, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert shell.returncode == 0, shell.stderr
    sourced = json.loads(shell.stdout)
    assert {name: sourced.get(name) for name in values} == values
    probe = ("import json, django; django.setup(); from django.conf import settings as s;"
             "print(json.dumps([s.DEBUG, s.EXTENSION_PATTERN, s.DIAL_RULES, s.ORIGINATE_CONTEXT, str(s.RECORDINGS_DIR)]))")
    environ = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", **values}
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=environ, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == [False, r"^\d{2,6}$", [["+7", "8"], ["+", "810"]], "simplecalls-click-to-call", "/var/spool/asterisk/monitor"]


def test_the_example_nginx_and_the_dialplan_agree():
    """The names one file gives and another relies on: recordings' path and prefix, the click-to-call context."""
    values = example_values(ENV_EXAMPLE.read_text())
    site = SITE.read_text()
    internal = re.search(r"location (\S+) \{\s*internal;\s*alias (\S+);", site)
    assert internal and internal[1] == values["RECORDINGS_ACCEL_PREFIX"] and internal[2].rstrip("/") == values["RECORDINGS_DIR"]
    dialplan = (DEPLOY / "asterisk" / "extensions-simplecalls.conf").read_text()
    assert f"[{values['ORIGINATE_CONTEXT']}]" in dialplan and "D(${SIMPLECALLS_DTMF})" in dialplan
    assert re.search(r"MixMonitor\([^/][^,]*,", dialplan), "a relative file name: under Asterisk's monitor directory, RECORDINGS_DIR"
    assert values["CDR_TIMEZONE"] == "UTC" and "usegmtime = yes" in (DEPLOY / "asterisk" / "cdr.conf").read_text()
    assert "secret = " in MANAGER_CONF.read_text() and values["AMI_USERNAME"] == "simplecalls" and "[simplecalls]" in MANAGER_CONF.read_text()


# --- Asterisk's manager.conf ---------------------------------------------------------------------

# Which write classes let an AMI user run each action (Asterisk's main/manager.c, 13 to 22): any one
# of them will do; an empty set, any user. An action missing here fails the test: add its classes.
ACTION_CLASSES = {
    "Login": set(), "Logoff": set(), "Ping": set(), "Events": set(), "Challenge": set(), "ListCommands": set(),
    "WaitEvent": set(),
    "Originate": {"originate"},
    "CoreShowChannels": {"system", "reporting"}, "CoreSettings": {"system", "reporting"},
    "CoreStatus": {"system", "reporting"},
    "Status": {"system", "call", "reporting"}, "Getvar": {"call", "reporting"},
    "ExtensionState": {"call", "reporting"},
    "Hangup": {"system", "call"}, "Setvar": {"call"}, "Redirect": {"call"},
    "Command": {"command"}, "UserEvent": {"user"}, "Filter": {"system"},
}
ACTION = re.compile(r"[\"']Action[\"']\s*:\s*[\"']([A-Za-z]+)[\"']")


def manager_user(section: str = "simplecalls") -> dict[str, list[str]]:
    """The section's lines, each key's values in order (eventfilter repeats)."""
    values: dict[str, list[str]] = {}
    current = None
    for raw in MANAGER_CONF.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def classes(key: str) -> set[str]:
    return {name.strip() for value in manager_user()[key] for name in value.split(",")}


def actions_sent() -> set[str]:
    """Every action the product's code sends; the simulator's own (Sim*) and the benchmarks' aside."""
    found = set()
    for path in (ROOT / "telephony").rglob("*.py"):
        if "simulator" in path.parts or path.name.startswith("bench_"):
            continue
        found.update(name for name in ACTION.findall(path.read_text()) if not name.startswith("Sim"))
    return found


def test_the_user_may_send_every_action_the_code_sends():
    sent = actions_sent()
    assert {"Login", "Originate", "CoreShowChannels", "Ping"} <= sent  # the scan works
    unknown = sent - ACTION_CLASSES.keys()
    assert not unknown, f"add the write classes of {unknown} (Asterisk's manager.c) to ACTION_CLASSES"
    write = classes("write")
    refused = {action for action in sent if ACTION_CLASSES[action] and not ACTION_CLASSES[action] & write}
    assert not refused
    # And no more than that: every class granted is needed by some action sent.
    assert all(any(name in ACTION_CLASSES[action] for action in sent) for name in write), write


def posix_search(pattern: str, text: str) -> bool:
    """regcomp(REG_EXTENDED | REG_NOSUB) and regexec, as Asterisk matches a legacy eventfilter."""
    libc = ctypes.CDLL(None)
    compiled = ctypes.create_string_buffer(1024)  # larger than any libc's regex_t
    assert libc.regcomp(compiled, pattern.encode(), 1 | 8) == 0, pattern
    try:
        return libc.regexec(compiled, text.encode(), 0, None, 0) == 0
    finally:
        libc.regfree(compiled)


def raw_events(name: str) -> list[str]:
    """The transcript's messages as the PBX writes them, each header on its own CRLF-ended line."""
    text = (AMI_FIXTURES / name).read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
    blocks = [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]
    return ["\r\n".join(block.split("\n")) + "\r\n" for block in blocks if block.startswith("Event:")]


def delivered(message: str, read: set[str], filters: list[str]) -> bool:
    """Whether the PBX sends this event to the user: its classes all readable, and an include filter matching."""
    privilege = re.search(r"^Privilege: (.*)$", message, re.MULTILINE)
    event_classes = {name.strip() for name in privilege[1].split(",")} - {"all"} if privilege else set()
    return event_classes <= read and (not filters or any(posix_search(pattern, message) for pattern in filters))


TRANSCRIPTS = sorted(path.name for path in AMI_FIXTURES.glob("*.txt") if path.name != "malformed.txt")
CLOCK = datetime(2024, 11, 27, 12, 0, tzinfo=timezone.utc)


def timed(messages: list[dict[str, str]]) -> list[tuple[datetime, dict[str, str]]]:
    """Each message with when the listener hears it: at its Timestamp, else one second after the one before."""
    heard = []
    for index, message in enumerate(messages):
        try:
            heard.append((datetime.fromtimestamp(float(message.get("Timestamp", "")), timezone.utc), message))
        except ValueError:
            heard.append((CLOCK + timedelta(seconds=index), message))
    return heard


def final_states(heard: list[tuple[datetime, dict[str, str]]]) -> dict[str, events.CallState]:
    tracker = events.CallTracker(endpoints={"SIP/4411-7": "104", "SIP/310020005": "105", "PJSIP/hg63xv": "106", "SIP/office-front": "107"})
    states = {}
    for now, message in heard:
        if (state := tracker.apply(message, now)) is not None:
            states[state.linkedid] = state
    return states


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_the_user_reads_every_event_the_listener_needs_and_the_filter_drops_only_the_rest(name):
    """Each recorded call reduced from what this manager.conf lets through comes out as from the whole stream."""
    read, filters = classes("read"), manager_user().get("eventfilter", [])
    stream = raw_events(name)
    heard = timed([events.parse_transcript(message)[0] for message in stream])
    kept = [(now, headers) for (now, headers), message in zip(heard, stream) if delivered(message, read, filters)]
    for (_, headers), message in zip(heard, stream):
        needed = headers["Event"].lower() in events._HANDLED and (
            headers["Event"] != "VarSet" or headers.get("Variable", "").upper() == "MIXMONITOR_FILENAME")
        if needed:
            assert delivered(message, read, filters), message
    assert final_states(kept) == final_states(heard)


def test_the_event_filter_drops_what_the_listener_never_reads():
    read, filters = classes("read"), manager_user().get("eventfilter", [])
    dropped = {re.match(r"Event: (\w+)", message)[1] for name in TRANSCRIPTS for message in raw_events(name) if not delivered(message, read, filters)}
    assert {"Newexten", "BridgeLeave", "MixMonitorStart", "Cdr"} <= dropped
    # VarSet of any other variable, even one listing MIXMONITOR_FILENAME among its ChanVariables, stays at the PBX.
    other = ("Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: PJSIP/100-00000001\r\nUniqueid: 1.1\r\n"
             "ChanVariable: MIXMONITOR_FILENAME=\r\nVariable: DIALSTATUS\r\nValue: ANSWER\r\n")
    assert not delivered(other, read, filters)
    assert delivered(other.replace("DIALSTATUS", "MIXMONITOR_FILENAME"), read, filters)
