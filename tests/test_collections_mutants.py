"""The collection lifecycle (dagster_qdrant/collections.py, collection_versions.py) against a server running in this process.

The IO manager and overwrite tests drive the same code through Dagster and Spark against the session's
server process; these call it directly, so that a changed line shows here (mutation testing runs them;
README "Mutation testing"). The server is the embedded one, its handlers served from a thread of this
process; the loopback fault proxy (tests/faultproxy.py) answers where a test needs the answer of a busy or
refusing server. References: the input values (the names, owners, times and points given), the operating
system (``/proc``, ``os.getpid``, a reaped child's pid), and the OpenAPI spec for the alias actions.

The file is long because the module has many behaviours (names, owners, expiry, heartbeat, swap, sweep,
replacement) and the mutation run's test selection names one file per module under mutation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultproxy import Canned, FaultProxy
from hypothesis import given, settings
from hypothesis import strategies as st
from waiting import wait_until

from dagster_qdrant import collection_versions as versions
from dagster_qdrant import collections as lifecycle
from dagster_qdrant.errors import QdrantError, QdrantNotFoundError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions

BASE = "lifecycle"
HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
FIXED = settings(derandomize=True, max_examples=60, deadline=None)


@pytest.fixture(scope="module")
def server_url(in_process_qdrant_url: str) -> str:
    return in_process_qdrant_url


def _client(url: str) -> QdrantHttp:
    return QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))


@pytest.fixture
def http(server_url: str) -> Iterator[QdrantHttp]:
    client = _client(server_url)
    yield client
    for alias in client.list_aliases():
        client.update_aliases([{"delete_alias": {"alias_name": alias["alias_name"]}}])
    for name in client.list_collections():
        client.delete_collection(name)


@pytest.fixture(autouse=True)
def _own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settled marks go under this test's own temporary directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def _create(http: QdrantHttp, name: str, metadata: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {"vectors": {"size": 2, "distance": "Dot"}}
    if metadata is not None:
        body["metadata"] = metadata
    http.create_collection(name, body)


def _stamp(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%Y%m%d%H%M%S")


def _dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _points(http: QdrantHttp, name: str) -> dict[Any, tuple[Any, Any]]:
    points, offset = {}, None
    while True:
        body: dict[str, Any] = {"limit": 250, "with_payload": True, "with_vector": True}
        if offset is not None:
            body["offset"] = offset
        page, offset = http.scroll(name, body)
        points.update({point["id"]: (point.get("payload"), point.get("vector")) for point in page})
        if offset is None:
            return points


# ----- names -------------------------------------------------------------------------------------

RUNS = st.text(alphabet="abcXYZ09-_ .é", max_size=12)
BASES = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
MOMENTS = st.integers(min_value=0, max_value=4_000_000_000).map(float)


@FIXED
@given(base=BASES, run=RUNS, pid=st.integers(min_value=1, max_value=4_194_304), host=st.sampled_from([HOST, "0badcafe"]),
       now=MOMENTS, owned=st.booleans())
def test_a_version_name_says_its_base_time_run_and_owner_and_parses_back(
    base: str, run: str, pid: int, host: str, now: float, owned: bool
) -> None:
    owner = versions.Owner(host, pid) if owned else None
    name = versions.new_version_name(base, run=run, owner=owner, now=now + 0.9)
    run_part = "".join(c for c in run.lower() if c in "0123456789abcdefghijklmnopqrstuvwxyz")[:8]
    expected = re.escape(f"{base}__{_stamp(now)}") + "[0-9a-f]{4}"
    expected += re.escape(f"_r{run_part}") if run_part else ""
    expected += re.escape(f"_h{host}p{pid}") if owned else ""
    assert re.fullmatch(expected, name), (name, expected)
    version = versions.parse_version(base, name)
    assert version == versions.Version(name, now, owner)
    assert versions.parse_version(base + "x", name) is None
    assert versions.parse_version("x" + base, name) is None
    assert versions.parse_version(base, name + "!") is None
    assert versions.parse_version(base, name.replace("__", "_", 1)) is None


def test_a_version_name_defaults_to_now_with_no_run_and_no_owner() -> None:
    before = int(time.time())
    name = versions.new_version_name(BASE)
    after = int(time.time())
    version = versions.parse_version(BASE, name)
    assert version is not None and version.owner is None and before <= version.created <= after
    assert re.fullmatch(re.escape(BASE) + r"__\d{14}[0-9a-f]{4}", name)
    assert len({versions.new_version_name(BASE, now=0.0) for _ in range(50)}) > 40  # the nonce


def test_a_version_stamp_is_utc_whatever_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30, no daylight saving
    time.tzset()
    try:
        moment = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
        name = versions.new_version_name(BASE, now=moment)
        assert name.startswith(f"{BASE}__20231114221320")
        assert versions.parse_version(BASE, name).created == moment
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_names_that_are_not_versions_of_the_base_are_not_parsed() -> None:
    stamp = _stamp(0.0)
    for name in (BASE, f"{BASE}__", f"{BASE}__{stamp}", f"{BASE}__{stamp}abcg", f"{BASE}__{stamp}ABCD",
                 f"{BASE}__{stamp}abcd_r", f"{BASE}__{stamp}abcd_rABC", f"{BASE}__{stamp}abcd_r123456789",
                 f"{BASE}__{stamp}abcd_h{HOST}p", f"{BASE}__{stamp}abcd_h{HOST[:7]}p1", f"{BASE}__{stamp}abcd_hXXXXXXXXp1",
                 f"{BASE}__{stamp}abcd_h{HOST}p12345678901", f"{BASE}__{stamp[:13]}abcd", f"{BASE}__{stamp}abcd__served",
                 f"other__{stamp}abcd"):
        assert versions.parse_version(BASE, name) is None, name
    assert versions.parse_version(BASE, f"{BASE}__{stamp}abcd_r12345678_h{HOST}p1234567890") == versions.Version(
        f"{BASE}__{stamp}abcd_r12345678_h{HOST}p1234567890", 0.0, versions.Owner(HOST, 1234567890)
    )


def test_this_process_is_named_by_the_hosts_hash_and_its_pid() -> None:
    assert versions.host_key() == HOST
    assert versions.Owner.this_process() == versions.Owner(HOST, os.getpid())
    assert versions.served_marker("v") == "v__served"


def test_a_process_under_no_jvm_has_no_java_ancestor() -> None:
    assert versions.Owner.java_ancestor() is None


def test_the_java_ancestor_is_the_nearest_process_named_java(tmp_path: Path) -> None:
    """A process named ``java`` (this interpreter under that name) starts a Python child, which starts a
    grandchild: both find the ``java`` process, by its pid (this process, under no JVM, finds none)."""
    assert versions.Owner.java_ancestor() is None
    java = tmp_path / "java"
    shutil.copy(sys.executable, java)
    java.chmod(0o755)
    probe = "from dagster_qdrant.collection_versions import Owner; o = Owner.java_ancestor(); print(o.host, o.pid)"
    grandchild = f"import subprocess, sys; print(subprocess.run([sys.executable, '-c', {probe!r}], capture_output=True, text=True, check=True).stdout, end='')"
    child = f"import subprocess, sys; print(subprocess.run([sys.executable, '-c', {grandchild!r}], capture_output=True, text=True, check=True).stdout, end='')"
    java_script = f"import os, subprocess; print(os.getpid()); print(subprocess.run([{sys.executable!r}, '-c', {child!r}], capture_output=True, text=True, check=True).stdout, end='')"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    shown = subprocess.run([str(java), "-c", java_script], capture_output=True, text=True, check=True, env=env)
    java_pid, found = shown.stdout.splitlines()
    assert found == f"{HOST} {java_pid}"


_CHAIN = """
import os, subprocess, sys
depth = int(sys.argv[1])
if depth:
    command = [sys.executable, "-c", os.environ["CHAIN"], str(depth - 1)]
    print(subprocess.run(command, capture_output=True, text=True, check=True).stdout, end="")
else:
    from dagster_qdrant.collection_versions import Owner
    owner = Owner.java_ancestor()
    print(owner and owner.pid)
"""


def _under_java(tmp_path: Path, depth: int, *prefix: str) -> tuple[str, str]:
    """(the ``java`` process's pid, what a process ``depth + 1`` levels below it finds)."""
    java = tmp_path / "java"
    shutil.copy(sys.executable, java)
    java.chmod(0o755)
    env = {**os.environ, "CHAIN": _CHAIN, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    top = (f"import os, subprocess; print(os.getpid()); print(subprocess.run([{sys.executable!r}, '-c', "
           f"os.environ['CHAIN'], '{depth}'], capture_output=True, text=True, check=True).stdout, end='')")
    shown = subprocess.run([*prefix, str(java), "-c", top], capture_output=True, text=True, check=True, env=env)
    java_pid, found = shown.stdout.splitlines()
    return java_pid, found


def test_the_java_ancestor_is_looked_for_sixteen_processes_up(tmp_path: Path) -> None:
    assert versions.Owner.java_ancestor() is None
    java_pid, found = _under_java(tmp_path, 14)  # the JVM is the 16th process looked at: found
    assert found == java_pid
    _, found = _under_java(tmp_path, 15)  # the 17th: not
    assert found == "None"


def test_a_jvm_that_is_pid_1_is_found(tmp_path: Path) -> None:
    """In a container the Spark driver's JVM can be pid 1 (here: pid 1 of a PID namespace of its own)."""
    assert versions.Owner.java_ancestor() is None
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a PID namespace here: {probe.stderr.decode().strip()}")
    java_pid, found = _under_java(tmp_path, 1, "unshare", "--pid", "--fork", "--mount-proc")
    assert java_pid == "1" and found == "1"


@pytest.mark.parametrize(("name", "command"), [(b"a) (b", "a) (b"), (b"\xffjava", "\ufffdjava")],
                         ids=["parentheses", "not UTF-8"])
def test_a_process_name_is_read_whole_from_proc(tmp_path: Path, name: bytes, command: str) -> None:
    named = os.path.join(os.fsencode(tmp_path), name)
    shutil.copy(sys.executable, named)
    os.chmod(named, 0o755)
    child = subprocess.Popen([named, b"-c", b"import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert versions._proc_stat(child.pid) == (command, os.getpid())
        assert versions.process_started_after(child.pid, _started(child.pid) - 2) is True
        assert versions.process_started_after(child.pid, _started(child.pid)) is False
    finally:
        child.communicate()
    assert versions._proc_stat(_dead_pid()) is None


# ----- who is alive ------------------------------------------------------------------------------


def _started(pid: int) -> float:
    """When ``pid`` started, from /proc (the kernel's boot time plus the process's start in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()  # the name ends at the last ")"
    boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def test_a_process_started_after_a_moment_is_told_apart_within_the_stamps_second() -> None:
    pid = os.getpid()
    started = _started(pid)
    assert versions.process_started_after(pid, started - 1.25) is True
    assert versions.process_started_after(pid, started - 0.75) is False
    assert versions.process_started_after(pid, started) is False
    assert versions.process_started_after(_dead_pid(), 0.0) is None
    moment = started - 1.0
    while moment + 1.0 > started:
        moment = math.nextafter(moment, -math.inf)
    while moment + 1.0 < started:
        moment = math.nextafter(moment, math.inf)
    assert moment + 1.0 == started
    assert versions.process_started_after(pid, moment) is False  # a second's slack: started at the bound is not after


def test_alive_means_the_pid_exists() -> None:
    assert versions.process_alive(os.getpid()) is True
    assert versions.process_alive(_dead_pid()) is False
    assert versions.process_alive(1) is True  # init: someone else's process, or ours as root


def test_asking_whether_a_process_is_alive_sends_it_no_signal() -> None:
    """kill(2) with signal 0 only checks that the pid exists: a child that reports every SIGHUP gets none."""
    script = ("import signal, sys\n"
              "signal.signal(signal.SIGHUP, lambda *_: print('HUP', flush=True))\n"
              "print('ready', flush=True)\n"
              "sys.stdin.read()\n"
              "print('done', flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    assert versions.process_alive(child.pid) is True
    out, _ = child.communicate("")
    assert out == "done\n"


def test_a_process_this_user_may_not_signal_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """kill(2) answers EPERM for another user's live process (as a non-root user sees pid 1)."""

    def not_permitted(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", not_permitted)
    assert versions.process_alive(1) is True


def test_a_settled_version_is_recorded_on_this_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not" / "yet"))  # folders made as needed
    assert not versions.is_settled("v1")
    versions.mark_settled("v1")
    assert versions.is_settled("v1") and not versions.is_settled("v2")
    versions.mark_settled("v2")  # the folder exists now
    versions.mark_settled("v2")
    assert versions.is_settled("v2") and not versions.is_settled("v3")


def test_a_settled_mark_that_cannot_be_written_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "dagster_qdrant-settled").write_text("a file where the folder goes")
    versions.mark_settled("v2")
    assert not versions.is_settled("v2")
    [record] = [r for r in caplog.records if r.name == "dagster_qdrant.collection_versions"]
    assert record.levelname == "WARNING"
    assert record.getMessage().startswith("could not record 'v2' as settled: [Errno ")


def test_a_version_owned_on_this_host_expires_exactly_when_its_owner_is_gone() -> None:
    created = _started(os.getpid()) - 60  # made a minute before this process started
    mine = versions.Version("v-mine", created, versions.Owner(HOST, os.getpid()))
    old_info = {"config": {"metadata": {"dagster_qdrant": {"heartbeat": 0}}}}
    assert versions.is_expired(mine, old_info, stale_after=0.0, now=time.time() + 10**9) is True  # pid reused
    later = versions.Version("v-later", time.time(), versions.Owner(HOST, os.getpid()))
    assert versions.is_expired(later, None, stale_after=0.0, now=time.time() + 10**9) is False  # alive: kept
    versions.mark_settled("v-later")
    assert versions.is_expired(later, None, stale_after=10**9) is True
    dead = versions.Version("v-dead", time.time(), versions.Owner(HOST, _dead_pid()))
    assert versions.is_expired(dead, None, stale_after=10**9) is True


@FIXED
@given(created=MOMENTS, beat=st.one_of(st.none(), MOMENTS, st.integers(0, 4_000_000_000)),
       age=st.integers(-100, 100), stale=st.integers(0, 1000), host=st.sampled_from([None, "0badcafe"]))
def test_a_version_with_no_owner_here_expires_when_its_last_sign_of_life_is_older_than_stale_after(
    created: float, beat: float | None, age: int, stale: int, host: str | None
) -> None:
    version = versions.Version("v", created, versions.Owner(host, 1) if host else None)
    info = {"config": {"metadata": {"dagster_qdrant": {"heartbeat": beat}}}} if beat is not None else None
    last = max(created, beat or 0)
    now = last + stale + age
    assert versions.is_expired(version, info, stale_after=float(stale), now=now) is (age > 0)


def test_a_heartbeat_the_server_did_not_keep_counts_for_nothing() -> None:
    version = versions.Version("v", 100.0, None)
    for info in (None, {}, {"config": None}, {"config": {}}, {"config": {"metadata": None}},
                 {"config": {"metadata": ["x"]}}, {"config": {"metadata": {"dagster_qdrant": None}}},
                 {"config": {"metadata": {"dagster_qdrant": {"heartbeat": "999"}}}},
                 {"config": {"metadata": {"other": {"heartbeat": 999}}}}):
        assert versions.is_expired(version, info, stale_after=10.0, now=111.0) is True, info
        assert versions.is_expired(version, info, stale_after=10.0, now=110.0) is False, info
    epoch = versions.Version("v", 0.0, None)  # no heartbeat: the stamp alone counts, even the earliest
    assert versions.is_expired(epoch, None, stale_after=10.0, now=10.5) is True
    fresh = {"config": {"metadata": {"dagster_qdrant": {"heartbeat": 200}}}}
    assert versions.is_expired(version, fresh, stale_after=10.0, now=210.0) is False
    assert versions.is_expired(version, fresh, stale_after=10.0, now=210.5) is True
    before = time.time()
    assert versions.is_expired(versions.Version("v", before - 5, None), None, stale_after=4.0) is True
    assert versions.is_expired(versions.Version("v", before + 5, None), None, stale_after=4.0) is False


def test_the_heartbeat_is_now_and_refreshed_on_the_server_while_the_write_runs(http: QdrantHttp) -> None:
    before = time.time()
    lease = versions.lease_metadata()
    assert set(lease) == {"dagster_qdrant"} and set(lease["dagster_qdrant"]) == {"heartbeat"}
    assert before <= lease["dagster_qdrant"]["heartbeat"] <= time.time()
    _create(http, "beating", {"dagster_qdrant": {"heartbeat": 1.0}, "mine": "kept"})

    def beat() -> float:
        return (http.collection_info("beating") or {})["config"]["metadata"]["dagster_qdrant"]["heartbeat"]

    with versions.Heartbeat(http, "beating", interval=0.02) as heartbeat:
        assert heartbeat._thread.is_alive()
        wait_until(lambda: beat() >= before, 30, "the heartbeat to be refreshed")
        http.delete_collection("beating")  # dropped mid-write: the next beats do nothing, and fail nothing
        wait_until(lambda: not http.collection_exists("beating"), 30, "the version to be dropped")
    assert not heartbeat._thread.is_alive()
    assert versions.Heartbeat(http, "x").interval == versions.HEARTBEAT_SECONDS == 60.0


def test_a_failed_beat_is_skipped_and_the_next_one_is_sent(http: QdrantHttp, server_url: str) -> None:
    _create(http, "flaky", {"dagster_qdrant": {"heartbeat": 1.0}})
    with FaultProxy(server_url, methods=("PATCH",), script=["503"] * 3) as proxy:
        beating = _client(proxy.url)
        with versions.Heartbeat(beating, "flaky", interval=0.02):
            wait_until(lambda: http.collection_info("flaky")["config"]["metadata"]["dagster_qdrant"]["heartbeat"] > 1,
                       30, "a beat after the failed ones")
        assert proxy.stats["503"] == 3


def test_a_heartbeat_left_running_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    """A process whose write never stopped its heartbeat still exits (the thread is a daemon)."""
    assert versions.Heartbeat(None, "v", interval=3600).collection == "v"  # the same class, built here too
    script = ("from dagster_qdrant.collection_versions import Heartbeat\n"
              "Heartbeat(None, 'v', interval=3600).__enter__()\n"
              "print('entered', flush=True)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout == "entered\n" and done.returncode == 0


def test_stopping_a_heartbeat_does_not_wait_for_its_interval(http: QdrantHttp) -> None:
    _create(http, "slow-beat")
    started = time.monotonic()
    with versions.Heartbeat(http, "slow-beat", interval=3600):
        pass
    assert time.monotonic() - started < 60  # the stop event wakes the thread; it never waits an hour


def test_a_beat_in_flight_when_the_write_ends_is_waited_for(http: QdrantHttp, server_url: str) -> None:
    # The write's end waits for a beat the server is answering, so no beat is sent once it has ended.
    _create(http, "ending-beat")
    with FaultProxy(server_url, methods=("PATCH",), script=["slow"], slow_seconds=1.0) as proxy:
        heartbeat = versions.Heartbeat(_client(proxy.url), "ending-beat", interval=0.01)
        with heartbeat:
            wait_until(lambda: proxy.stats["slow"] == 1, 30, "a beat the server answers slowly")
        assert not heartbeat._thread.is_alive()
        sent = len(proxy.requests)
        time.sleep(0.2)  # several intervals: a thread still beating would have sent more
        assert len(proxy.requests) == sent


def test_a_hanging_beat_holds_the_end_of_a_write_at_most_five_seconds_past_the_interval(
    http: QdrantHttp, server_url: str
) -> None:
    _create(http, "hanging-beat")
    interval = 0.01
    with FaultProxy(server_url, methods=("PATCH",), script=["slow"], slow_seconds=12.0) as proxy:
        heartbeat = versions.Heartbeat(_client(proxy.url), "hanging-beat", interval=interval)
        heartbeat.__enter__()
        wait_until(lambda: proxy.stats["slow"] == 1, 30, "a beat the server does not answer")
        ending = time.monotonic()
        heartbeat.__exit__(None, None, None)
        waited = time.monotonic() - ending
        # join(timeout=interval + 5): the beat is abandoned (its thread is a daemon), the write goes on
        assert interval + 4.9 <= waited < interval + 5.5, waited
        assert heartbeat._thread.is_alive()


# ----- state, configuration, drop ------------------------------------------------------------------


def test_the_alias_target_is_the_collection_it_names(http: QdrantHttp) -> None:
    _create(http, "one")
    _create(http, "two")
    http.update_aliases([{"create_alias": {"collection_name": "one", "alias_name": "first"}},
                         {"create_alias": {"collection_name": "two", "alias_name": "second"}}])
    assert versions.alias_target(http, "first") == "one"
    assert versions.alias_target(http, "second") == "two"
    assert versions.alias_target(http, "third") is None
    assert versions.alias_target(http, "one") is None  # a collection is not an alias


def test_a_collection_is_created_like_another_with_its_config_metadata_and_indexes(http: QdrantHttp) -> None:
    http.create_collection("model", {
        "vectors": {"dense": {"size": 3, "distance": "Cosine"}},
        "sparse_vectors": {"words": {}},
        "on_disk_payload": True,
        "hnsw_config": {"m": 8, "ef_construct": 50},
        "metadata": {"owner": "team", "shared": 1},
    })
    http.create_payload_index("model", "city", "keyword")
    http.create_payload_index("model", "year", {"type": "integer", "lookup": True, "range": False})
    model = http.collection_info("model")
    lifecycle.create_like(http, "copy", model, {"dagster_qdrant": {"heartbeat": 5.0}, "shared": 2})
    copy = http.collection_info("copy")
    assert copy["config"]["params"] == model["config"]["params"]
    assert copy["config"]["hnsw_config"] == model["config"]["hnsw_config"]
    assert copy["config"]["metadata"] == {"owner": "team", "shared": 2, "dagster_qdrant": {"heartbeat": 5.0}}
    assert {f: (i["data_type"], i.get("params")) for f, i in copy["payload_schema"].items()} == {
        "city": ("keyword", None), "year": ("integer", {"type": "integer", "lookup": True, "range": False})}
    lifecycle.create_like(http, "plain", {"config": {"params": {"vectors": {"size": 2, "distance": "Dot"}}}})
    plain = http.collection_info("plain")
    assert plain["config"]["params"]["vectors"] == {"size": 2, "distance": "Dot"}
    assert not plain["config"].get("metadata") and not plain["payload_schema"]
    assert "sparse_vectors" not in plain["config"]["params"] or not plain["config"]["params"]["sparse_vectors"]


def test_the_body_copied_leaves_out_what_the_model_does_not_set() -> None:
    info = {"config": {"params": {"vectors": {"size": 2, "distance": "Dot"}, "sparse_vectors": None,
                                  "on_disk_payload": False, "shard_number": 3},
                       "hnsw_config": {}, "quantization_config": {"scalar": {"type": "int8"}}, "metadata": None,
                       "optimizer_config": {"indexing_threshold": 1}}}
    assert lifecycle.copy_config_body(info) == {"vectors": {"size": 2, "distance": "Dot"}, "on_disk_payload": False,
                                                "quantization_config": {"scalar": {"type": "int8"}}}
    assert lifecycle.copy_config_body({}) == {"vectors": {}}
    assert lifecycle.copy_config_body({"config": None}) == {"vectors": {}}
    assert lifecycle.payload_indexes({"payload_schema": None}) == {}
    assert lifecycle.payload_indexes({"payload_schema": {"a": {"data_type": "uuid", "params": None}}}) == {"a": "uuid"}


def test_a_metadata_free_model_copies_only_the_given_metadata(http: QdrantHttp) -> None:
    _create(http, "bare")
    lifecycle.create_like(http, "leased", http.collection_info("bare"), {"k": 1})
    assert http.collection_info("leased")["config"]["metadata"] == {"k": 1}
    lifecycle.create_like(http, "unleased", http.collection_info("bare"), {})
    assert not http.collection_info("unleased")["config"].get("metadata")


def test_dropping_quietly_says_whether_this_call_dropped_it(http: QdrantHttp, server_url: str) -> None:
    _create(http, "doomed")
    assert versions.drop_quietly(http, "doomed") is True
    assert not http.collection_exists("doomed")
    assert versions.drop_quietly(http, "doomed") is False
    missing = Canned(404, b'{"status": {"error": "Not found: Collection `doomed` doesn\'t exist!"}, "time": 0}')
    with FaultProxy(server_url, methods=("DELETE",), rule=lambda *_: missing) as proxy:
        assert versions.drop_quietly(_client(proxy.url), "doomed") is False


# ----- swap, served marks, sweep -------------------------------------------------------------------


def test_a_swap_points_the_alias_at_the_version_and_marks_it_served_in_one_request(
    http: QdrantHttp, server_url: str
) -> None:
    _create(http, "v1")
    _create(http, "v2")
    with FaultProxy(server_url, keep_bodies=True) as proxy:
        client = _client(proxy.url)
        assert versions.swap_alias(client, "served", "v1") is None
        assert versions.swap_alias(client, "served", "v2") == "v1"
        updates = [r.body for r in proxy.requests if r.path == "/collections/aliases"]
    assert len(updates) == 2
    assert versions.alias_target(http, "served") == "v2"
    assert versions.is_served(http, "v1") and versions.is_served(http, "v2")
    assert not versions.is_served(http, "served")
    aliases = {a["alias_name"]: a["collection_name"] for a in http.list_aliases()}
    assert aliases == {"served": "v2", "v1__served": "v1", "v2__served": "v2"}


def test_marking_served_alone_leaves_the_alias_as_it_is(http: QdrantHttp) -> None:
    _create(http, "v1")
    assert not versions.is_served(http, "v1")
    versions.mark_served(http, "v1")
    assert versions.is_served(http, "v1")
    assert {a["alias_name"]: a["collection_name"] for a in http.list_aliases()} == {"v1__served": "v1"}


class _Rival:
    """Other writers that, ``times`` times, swap the alias in just before this writer reads it and take it
    away again just before this writer's update (whose ``delete_alias`` then finds no alias: a 404)."""

    def __init__(self, http: QdrantHttp, times: int) -> None:
        self.http, self.left, self.updates = http, times, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)

    def list_aliases(self) -> list[dict[str, Any]]:
        if self.left:
            self.http.update_aliases([{"create_alias": {"collection_name": "rival", "alias_name": "served"}}])
        return self.http.list_aliases()

    def update_aliases(self, actions: list[dict[str, Any]]) -> Any:
        self.updates += 1
        if self.left:
            self.left -= 1
            self.http.update_aliases([{"delete_alias": {"alias_name": "served"}}])
        return self.http.update_aliases(actions)


@pytest.mark.parametrize("races", [1, 4])
def test_a_swap_that_races_another_writer_is_retried_and_the_last_swap_wins(http: QdrantHttp, races: int) -> None:
    _create(http, "v1")
    _create(http, "rival")
    http.update_aliases([{"create_alias": {"collection_name": "v1", "alias_name": "served"}}])
    rival = _Rival(http, races)
    versions.swap_alias(rival, "served", "v1")
    assert rival.updates == races + 1
    assert versions.alias_target(http, "served") == "v1" and versions.is_served(http, "v1")


def test_a_swap_gives_up_after_five_lost_races(http: QdrantHttp) -> None:
    _create(http, "v1")
    _create(http, "rival")
    http.update_aliases([{"create_alias": {"collection_name": "v1", "alias_name": "served"}}])
    rival = _Rival(http, 10)
    with pytest.raises(QdrantNotFoundError):
        versions.swap_alias(rival, "served", "v1")
    assert rival.updates == 5


@pytest.mark.parametrize(("status", "retried"), [(400, True), (404, True), (409, True), (403, False), (422, False)])
def test_a_swap_retries_the_refusals_a_race_causes_and_no_others(
    http: QdrantHttp, server_url: str, status: int, retried: bool
) -> None:
    _create(http, "v1")
    answered: list[int] = []

    def refuse_once(method: str, path: str, body: bytes) -> Canned | None:
        if path != "/collections/aliases" or answered:
            return None
        answered.append(status)
        return Canned(status, b'{"status": {"error": "Bad request: alias changed"}, "time": 0}')

    with FaultProxy(server_url, methods=("POST",), rule=refuse_once) as proxy:
        client = _client(proxy.url)
        if retried:
            assert versions.swap_alias(client, "served", "v1") is None
            assert versions.alias_target(http, "served") == "v1"
        else:
            with pytest.raises(QdrantError) as raised:
                versions.swap_alias(client, "served", "v1")
            assert raised.value.status == status
            assert versions.alias_target(http, "served") is None
        assert sum(r.path == "/collections/aliases" for r in proxy.requests) == (2 if retried else 1)


def test_a_swap_to_a_version_that_is_gone_is_not_retried(http: QdrantHttp, server_url: str) -> None:
    with FaultProxy(server_url) as proxy:
        with pytest.raises(QdrantNotFoundError):
            versions.swap_alias(_client(proxy.url), "served", "never-made")
        assert sum(r.path == "/collections/aliases" for r in proxy.requests) == 1
    assert versions.alias_target(http, "served") is None


def _version(*, created: float, owner: versions.Owner | None = None, base: str = BASE) -> str:
    return versions.new_version_name(base, owner=owner, now=created)


def test_the_sweep_drops_exactly_the_versions_nobody_will_serve(http: QdrantHttp, tmp_path: Path) -> None:
    now = time.time()
    old, recent = now - 7200, now - 60
    alive = versions.Owner(HOST, os.getpid())
    served_old = _version(created=old)
    served_live = _version(created=old + 1)
    displaced_owned = _version(created=now, owner=alive)
    dead_owner = _version(created=recent, owner=versions.Owner(HOST, _dead_pid()))
    live_owner = _version(created=now, owner=alive)
    settled_owner = _version(created=now, owner=alive)
    elsewhere_old = _version(created=old, owner=versions.Owner("0badcafe", 1))
    elsewhere_recent = _version(created=recent, owner=versions.Owner("0badcafe", 1))
    unowned_old = _version(created=old)
    unowned_beating = _version(created=old)
    kept_by_caller = _version(created=old)
    someone_elses = _version(created=old, base=BASE + "_other")
    not_a_version = f"{BASE}__notaversion"
    for name in (served_old, served_live, displaced_owned, dead_owner, live_owner, settled_owner, elsewhere_old,
                 elsewhere_recent, unowned_old, kept_by_caller, someone_elses, not_a_version, BASE + "_plain"):
        _create(http, name)
    _create(http, unowned_beating, {"dagster_qdrant": {"heartbeat": recent}})
    for name in (served_old, displaced_owned):
        versions.mark_served(http, name)
    versions.swap_alias(http, BASE, served_live)
    versions.mark_settled(settled_owner)
    versions.mark_settled(unowned_old)

    dropped = versions.sweep(http, BASE, keep=[kept_by_caller])

    gone = {served_old, displaced_owned, dead_owner, settled_owner, elsewhere_old, unowned_old}
    assert sorted(dropped) == sorted(gone)
    remaining = set(http.list_collections())
    assert not gone & remaining
    assert {served_live, live_owner, elsewhere_recent, unowned_beating, kept_by_caller, someone_elses,
            not_a_version, BASE + "_plain"} <= remaining
    assert versions.alias_target(http, BASE) == served_live
    assert not versions.is_settled(settled_owner) and not versions.is_settled(unowned_old)
    assert versions.sweep(http, BASE, keep=[kept_by_caller]) == []
    assert sorted(versions.sweep(http, BASE, stale_after=30.0)) == sorted([elsewhere_recent, unowned_beating, kept_by_caller])
    assert live_owner in http.list_collections()


def test_the_sweep_keeps_a_fresh_version_by_default_and_counts_what_it_dropped(http: QdrantHttp, server_url: str) -> None:
    fresh = _version(created=time.time() - versions.STALE_AFTER_SECONDS + 120)
    stale = _version(created=time.time() - versions.STALE_AFTER_SECONDS - 120)
    _create(http, fresh)
    _create(http, stale)
    gone_meanwhile = _version(created=0.0)
    _create(http, gone_meanwhile)
    missing = Canned(404, b'{"status": {"error": "Not found: Collection doesn\'t exist!"}, "time": 0}')

    def dropped_by_someone_else(method: str, path: str, body: bytes) -> Canned | None:
        return missing if method == "DELETE" and gone_meanwhile in path else None

    with FaultProxy(server_url, rule=dropped_by_someone_else) as proxy:
        assert versions.sweep(_client(proxy.url), BASE) == [stale]
    assert set(http.list_collections()) == {fresh, gone_meanwhile}
    assert versions.STALE_AFTER_SECONDS == 3600.0


# ----- replacing a plain collection's points --------------------------------------------------------


def _upsert(http: QdrantHttp, name: str, points: dict[int, tuple[dict[str, Any], list[float] | None]]) -> None:
    structs = []
    for point_id, (payload, vector) in points.items():
        struct: dict[str, Any] = {"id": point_id, "payload": payload}
        if vector is not None:
            struct["vector"] = vector
        structs.append(struct)
    for start in range(0, len(structs), 1000):
        http.upsert(name, {"points": structs[start : start + 1000]})


def _sparse_collection(http: QdrantHttp, name: str) -> None:
    http.create_collection(name, {"vectors": {"d": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"s": {}}})


@pytest.mark.parametrize("write_method", ["auto", "put", "post"])
def test_replacing_points_leaves_exactly_the_source_points(http: QdrantHttp, server_url: str, write_method: str) -> None:
    _sparse_collection(http, "source")
    _sparse_collection(http, "target")
    source = {i: ({"n": i, "tag": f"s{i}"} if i % 3 else {}, {"d": [float(i), 0.5]} if i % 4 else
                  {"s": {"indices": [i], "values": [1.5]}}) for i in range(1, 26)}
    old = {i: ({"old": True}, {"d": [0.0, 1.0]}) for i in range(15, 2600)}
    _upsert(http, "source", source)
    _upsert(http, "target", old)
    with FaultProxy(server_url, keep_bodies=True) as proxy:
        copied = lifecycle.replace_points(_client(proxy.url), "source", "target", batch_size=4, write_method=write_method)
        sent = list(proxy.requests)
    assert copied == len(source)
    held = _points(http, "target")
    assert held == source
    writes = [r.path.split("?")[0] for r in sent if r.method in ("PUT", "POST") and "/points" in r.path
              and not r.path.split("?")[0].endswith(("/scroll", "/delete"))]
    expected = "/collections/target/points/batch" if write_method == "post" else "/collections/target/points"
    assert writes == [expected] * 7  # 25 points in pages of 4
    deletes = [r for r in sent if r.path.startswith("/collections/target/points/delete")]
    assert all("wait=true" in r.path for r in deletes)
    sizes = [r.body.count(b",") + 1 for r in deletes]
    # the target is read in pages of 1000 ids; a delete goes once 1000 or more stale ids are pending, then the rest
    assert sum(sizes) == len(set(old) - set(source)) == 2574
    assert sizes == [975 + 1000, 599]
    scrolls = [r for r in sent if r.path == "/collections/target/points/scroll"]
    assert all(b'"with_payload":false' in r.body.replace(b" ", b"") and b'"with_vector":false' in r.body.replace(b" ", b"")
               for r in scrolls)
    assert all(b'"limit":1000' in r.body.replace(b" ", b"") for r in scrolls)


def test_points_without_vectors_or_payload_are_copied_as_they_are(http: QdrantHttp) -> None:
    for name in ("novec_source", "novec_target"):
        http.create_collection(name, {"sparse_vectors": {"s": {}}})
    http.upsert("novec_source", {"points": [{"id": 1, "vector": {}},
                                            {"id": 2, "vector": {"s": {"indices": [7], "values": [2.0]}}, "payload": {"a": 1}}]})
    http.upsert("novec_target", {"points": [{"id": 3, "vector": {}, "payload": {"b": 2}}]})
    expected = _points(http, "novec_source")
    assert lifecycle.replace_points(http, "novec_source", "novec_target") == 2
    assert _points(http, "novec_target") == expected
    assert {k: v[0] for k, v in expected.items()} == {1: {}, 2: {"a": 1}}


def test_a_server_that_refuses_put_gets_the_points_by_post_from_then_on(http: QdrantHttp, server_url: str) -> None:
    _create(http, "src")
    _create(http, "dst")
    source = {i: ({"i": i}, [float(i), 1.0]) for i in range(10)}
    _upsert(http, "src", source)
    refused = Canned(405, b'{"status": {"error": "Method Not Allowed"}, "time": 0}')

    def refuse_put(method: str, path: str, body: bytes) -> Canned | None:
        return refused if method == "PUT" and "/points" in path else None

    with FaultProxy(server_url, rule=refuse_put) as proxy:
        assert lifecycle.replace_points(_client(proxy.url), "src", "dst", batch_size=3) == 10
        puts = [r for r in proxy.requests if r.method == "PUT"]
        posts = [r for r in proxy.requests if r.path.startswith("/collections/dst/points/batch")]
    assert len(puts) == 1 and len(posts) == 4
    assert _points(http, "dst") == {i: (p, v) for i, (p, v) in source.items()}
    _create(http, "dst2")
    with FaultProxy(server_url, rule=refuse_put) as proxy, pytest.raises(QdrantError) as raised:
        lifecycle.replace_points(_client(proxy.url), "src", "dst2", write_method="put")
    assert raised.value.status == 405
    assert _points(http, "dst2") == {}


def test_any_other_refusal_of_the_upsert_is_raised(http: QdrantHttp, server_url: str) -> None:
    _create(http, "src")
    _create(http, "dst")
    _upsert(http, "src", {1: ({}, [1.0, 2.0])})
    refused = Canned(400, b'{"status": {"error": "Wrong input: refused"}, "time": 0}')
    with FaultProxy(server_url, rule=lambda m, p, b: refused if m == "PUT" else None) as proxy:
        with pytest.raises(QdrantError) as raised:
            lifecycle.replace_points(_client(proxy.url), "src", "dst")
        assert raised.value.status == 400 and raised.value.point_ids == [1]  # the error names the points
        assert not [r for r in proxy.requests if "/points/batch" in r.path]
    with FaultProxy(server_url, rule=lambda m, p, b: refused if "/points/batch" in p else None) as proxy:
        with pytest.raises(QdrantError) as raised:
            lifecycle.replace_points(_client(proxy.url), "src", "dst", write_method="post")
        assert raised.value.status == 400 and raised.value.point_ids == [1]


def test_stale_points_are_deleted_as_soon_as_a_thousand_are_pending(http: QdrantHttp, server_url: str) -> None:
    """The ids to delete are held at most a page at a time: exactly 1000 pending go before the next page is read."""
    _create(http, "src")
    _create(http, "dst")
    _upsert(http, "src", {5000 + i: ({}, [1.0, 0.0]) for i in range(3)})
    _upsert(http, "dst", {i: ({}, [0.0, 1.0]) for i in range(1, 1001)})
    with FaultProxy(server_url) as proxy:
        lifecycle.replace_points(_client(proxy.url), "src", "dst")
        order = [r.path.split("?")[0].rsplit("/", 1)[1] for r in proxy.requests if r.path.startswith("/collections/dst/")]
    assert order == ["points", "scroll", "delete", "scroll"]
    assert sorted(_points(http, "dst")) == [5000, 5001, 5002]


def test_replacing_with_the_default_page_reads_the_source_in_pages_of_512(http: QdrantHttp, server_url: str) -> None:
    _create(http, "big_src")
    _create(http, "big_dst")
    _upsert(http, "big_src", {i: ({}, [1.0, 0.0]) for i in range(1100)})
    with FaultProxy(server_url, keep_bodies=True) as proxy:
        assert lifecycle.replace_points(_client(proxy.url), "big_src", "big_dst") == 1100
        writes = [r for r in proxy.requests if r.method == "PUT"]
    assert [w.body.count(b'"id"') for w in writes] == [512, 512, 76]
    assert len(_points(http, "big_dst")) == 1100
