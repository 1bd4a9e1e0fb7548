"""Security: the API key never leaks, TLS is verified by default, the embedded server is loopback-only
and enforces its key.

The API key is a secret the user hands us; it may travel in the ``api-key`` header and nowhere else:
not in a log line, an exception (or its chained causes), a Spark plan, Dagster metadata, a recorded
cassette, or the repr of a config object.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import ssl
import subprocess
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from faultproxy import FaultProxy

from dagster_qdrant.errors import QdrantAuthError, QdrantConfigError, QdrantConnectionError, QdrantError
from dagster_qdrant.options import ConnectionOptions, ReadOptions, WriteOptions, build_qdrant_config, build_qdrant_write_config

API_KEY = "sk-test-" + secrets.token_hex(16)
WRONG_KEY = "sk-wrong-" + secrets.token_hex(16)
CASSETTES = Path(__file__).parent / "cassettes"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """An embedded Qdrant that requires API_KEY."""
    from dagster_qdrant.embedded import start_embedded_qdrant

    server = start_embedded_qdrant(tmp_path_factory.mktemp("keyed-qdrant"), api_key=API_KEY)
    try:
        yield server
    finally:
        server.stop()


def _full_text(error: BaseException) -> str:
    """Everything an exception can show: message, repr, args and the whole chained traceback."""
    parts = [str(error), repr(error), repr(error.args), *traceback.format_exception(error)]
    if hasattr(error, "__dict__"):
        parts.append(repr(vars(error)))
    return "\n".join(parts)


def _assert_no_secret(text: str) -> None:
    assert API_KEY not in text, "the API key leaked"
    assert WRONG_KEY not in text, "the (wrong) API key leaked"


# --- repr of configs -------------------------------------------------------------------------------


def test_repr_of_options_and_configs_hides_the_api_key() -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "api-key": API_KEY, "x-trace": "visible"}
    objects = [
        ConnectionOptions(endpoint="http://127.0.0.1:6333", api_key=API_KEY, headers=headers),
        ReadOptions(endpoint="http://127.0.0.1:6333", collection="c", api_key=API_KEY, headers=headers),
        WriteOptions(endpoint="http://127.0.0.1:6333", collection="c", api_key=API_KEY, headers=headers),
        build_qdrant_config("http://127.0.0.1:6333", "c", api_key=API_KEY, headers=headers),
        build_qdrant_write_config("http://127.0.0.1:6333", "c", api_key=API_KEY, headers=headers),
    ]
    for shown in objects:
        for text in (repr(shown), str(shown), f"{shown}", f"{shown!r}"):
            assert API_KEY not in text, f"{type(shown).__name__} shows the API key: {text}"
        assert "visible" in repr(shown), "masking must hide only secrets, not every header"


def test_config_errors_never_repeat_the_api_key() -> None:
    """A typo in the JSON carrying the key must not print the key back in the error."""
    broken_config = '{"endpoint": "http://127.0.0.1:6333", "collection": "c", "api_key": "%s",' % API_KEY
    with pytest.raises(QdrantConfigError) as raised:
        ReadOptions.from_spark_options({"qdrant.config": broken_config})
    _assert_no_secret(_full_text(raised.value))

    broken_headers = '{"api-key": "%s"' % API_KEY
    with pytest.raises(QdrantConfigError) as raised:
        ReadOptions.from_spark_options(
            {"endpoint": "http://127.0.0.1:6333", "collection": "c", "headers": broken_headers}
        )
    _assert_no_secret(_full_text(raised.value))

    with pytest.raises(QdrantConfigError) as raised:
        WriteOptions.from_mapping({"endpoint": "http://127.0.0.1:6333", "collection": "c", "api_key": 12345})
    assert "12345" not in str(raised.value)


# --- the embedded server ---------------------------------------------------------------------------


def test_embedded_server_enforces_its_api_key(keyed_server: object) -> None:
    url = keyed_server.url  # type: ignore[attr-defined]
    missing = requests.get(f"{url}/collections", timeout=10)
    wrong = requests.get(f"{url}/collections", headers={"api-key": WRONG_KEY}, timeout=10)
    right = requests.get(f"{url}/collections", headers={"api-key": API_KEY}, timeout=10)
    bearer = requests.get(f"{url}/collections", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert missing.status_code in (401, 403), missing.text
    assert wrong.status_code in (401, 403), wrong.text
    assert right.status_code == 200, right.text
    assert bearer.status_code == 200, "Qdrant also accepts the key as 'Authorization: Bearer'"
    write = requests.put(
        f"{url}/collections/guarded",
        json={"vectors": {"size": 2, "distance": "Dot"}},
        headers={"api-key": WRONG_KEY},
        timeout=10,
    )
    assert write.status_code in (401, 403), "a write with a wrong key must be refused"
    _assert_no_secret(missing.text + wrong.text + write.text)


def test_embedded_server_listens_on_loopback_only(keyed_server: object) -> None:
    url: str = keyed_server.url  # type: ignore[attr-defined]
    port = int(url.rsplit(":", 1)[1])
    assert url.startswith("http://127.0.0.1:")
    listening = _listening_addresses(port)
    assert listening, f"nothing listens on port {port}"
    assert listening <= {"127.0.0.1"}, f"port {port} is open on {listening}, not only on 127.0.0.1"
    for address in _other_local_addresses():
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()


def _listening_addresses(port: int) -> set[str]:
    """IPv4/IPv6 addresses with a socket in LISTEN state on ``port``, from /proc/net/tcp*."""
    found: set[str] = set()
    for table, loopback in (("/proc/net/tcp", "0100007F"), ("/proc/net/tcp6", "00000000000000000000000001000000")):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.add("127.0.0.1" if address in (loopback, "0000000000000000FFFF00000100007F") else address)
    return found


def _other_local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (none in a bare sandbox: then only /proc is checked)."""
    try:
        output = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [address for address in output.split() if "." in address and not address.startswith("127.")]


# --- exceptions and logs ---------------------------------------------------------------------------


def test_wrong_api_key_is_a_clear_auth_error_without_the_key(
    keyed_server: object, caplog: pytest.LogCaptureFixture
) -> None:
    from dagster_qdrant.http import QdrantHttp

    caplog.set_level(logging.DEBUG)
    url = keyed_server.url  # type: ignore[attr-defined]
    client = QdrantHttp(ConnectionOptions(endpoint=url, api_key=WRONG_KEY, max_retries=3, backoff_factor=0.01))
    with FaultProxy(url) as proxy:
        counted = QdrantHttp(
            ConnectionOptions(endpoint=proxy.url, api_key=WRONG_KEY, max_retries=3, backoff_factor=0.01)
        )
        with pytest.raises(QdrantAuthError) as raised:
            counted.collection_info("anything")
        assert proxy.stats["requests"] == 1, "401/403 must not be retried"
    assert raised.value.status in (401, 403)
    assert "api" in str(raised.value).lower() and "key" in str(raised.value).lower(), (
        f"the message should say the API key was refused and how to set it: {raised.value}"
    )
    _assert_no_secret(_full_text(raised.value))
    with pytest.raises(QdrantAuthError) as raised:
        client.upsert("anything", {"points": [{"id": 1, "vector": [1.0, 0.0]}]})
    _assert_no_secret(_full_text(raised.value))
    _assert_no_secret(caplog.text)


def test_api_key_never_reaches_logs_during_a_write_and_read(
    keyed_server: object, caplog: pytest.LogCaptureFixture, collection_name: str
) -> None:
    from dagster_qdrant.http import QdrantHttp
    from dagster_qdrant.points.without_spark import write_qdrant_points

    caplog.set_level(logging.DEBUG)
    url = keyed_server.url  # type: ignore[attr-defined]
    config = build_qdrant_write_config(
        url, collection_name, api_key=API_KEY, create_collection=True, distance="Dot", batch_size=7
    )
    rows = [{"id": index, "vector": [float(index), 1.0], "name": f"row {index}"} for index in range(20)]
    report = write_qdrant_points(rows, config)
    assert report.points_written == 20
    client = QdrantHttp(ConnectionOptions(endpoint=url, api_key=API_KEY))
    assert client.count(collection_name) == 20
    records = " ".join(record.getMessage() + repr(record.args) for record in caplog.records)
    _assert_no_secret(caplog.text + records)
    server_dir = Path(keyed_server.path)  # type: ignore[attr-defined]
    for log_file in list(server_dir.rglob("*.log")) + list(server_dir.rglob("*.json")):
        _assert_no_secret(log_file.read_text(errors="replace"))


# --- Spark ------------------------------------------------------------------------------------------


def test_spark_plans_and_errors_never_show_the_api_key(keyed_server: object, spark, collection_name: str) -> None:
    url = keyed_server.url  # type: ignore[attr-defined]
    config = build_qdrant_write_config(url, collection_name, api_key=API_KEY, create_collection=True, distance="Dot")
    frame = spark.createDataFrame([(index, [float(index), 1.0]) for index in range(10)], "id long, vector array<float>")
    frame.write.format("qdrant").options(**WriteOptions.from_mapping(config).spark_options()).mode("append").save()

    read = spark.read.format("qdrant").options(
        **ReadOptions.from_mapping(build_qdrant_config(url, collection_name, api_key=API_KEY)).spark_options()
    ).load()
    assert read.count() == 10
    plans = read._jdf.queryExecution().toString()
    _assert_no_secret(plans)

    wrong = spark.read.format("qdrant").options(
        **ReadOptions.from_mapping(build_qdrant_config(url, collection_name, api_key=WRONG_KEY)).spark_options()
    )
    with pytest.raises(Exception) as raised:
        wrong.load().collect()
    text = _full_text(raised.value)
    _assert_no_secret(text)
    assert "401" in text or "403" in text or "QdrantAuthError" in text, text[-2000:]


# --- cassettes --------------------------------------------------------------------------------------


def test_recorded_cassettes_hold_no_api_key() -> None:
    """Recorded HTTP exchanges are committed: no request in them may carry an api-key/Authorization value."""
    import yaml

    files = sorted(CASSETTES.rglob("*.yaml")) if CASSETTES.exists() else []
    if not files:
        pytest.skip("no cassettes recorded under tests/cassettes")
    secrets_in_env = [os.environ[name] for name in ("QDRANT_API_KEY",) if os.environ.get(name)]
    for path in files:
        text = path.read_text(errors="replace")
        _assert_no_secret(text)
        for secret in secrets_in_env:
            assert secret not in text, f"{path.name} holds the QDRANT_API_KEY value"
        for interaction in (yaml.safe_load(text) or {}).get("interactions", []):
            headers = {name.lower(): value for name, value in (interaction["request"].get("headers") or {}).items()}
            for name in ("api-key", "authorization"):
                values = headers.get(name) or []
                assert all(str(value) in ("", "REDACTED", "<REDACTED>", "***") for value in values), (
                    f"{path.relative_to(CASSETTES)} records a {name} header value"
                )


# --- TLS --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by nobody a client trusts."""
    folder = tmp_path_factory.mktemp("tls")
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


def test_https_verifies_certificates_by_default_and_accepts_a_ca_bundle(
    qdrant_url: str, self_signed_certificate: tuple[Path, Path]
) -> None:
    from dagster_qdrant.http import QdrantHttp

    certificate, key = self_signed_certificate
    assert ConnectionOptions(endpoint="https://example.invalid").verify is True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    with FaultProxy(qdrant_url, tls_context=context) as proxy:
        assert proxy.url.startswith("https://")
        untrusted = QdrantHttp(ConnectionOptions(endpoint=proxy.url, max_retries=1, backoff_factor=0.01))
        with pytest.raises(QdrantError) as raised:
            untrusted.server_version()
        assert isinstance(raised.value, QdrantConnectionError)
        assert "certificate" in str(raised.value).lower() or "ssl" in str(raised.value).lower(), str(raised.value)

        trusted = QdrantHttp(ConnectionOptions(endpoint=proxy.url, verify=str(certificate)))
        assert trusted.server_version() >= (1, 0, 0)
        unverified = QdrantHttp(ConnectionOptions(endpoint=proxy.url, verify=False))
        assert unverified.server_version() >= (1, 0, 0)


# --- Dagster ----------------------------------------------------------------------------------------


def test_dagster_resource_and_io_manager_repr_hide_the_api_key() -> None:
    from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
    from dagster_qdrant.dagster_io.resources import QdrantResource

    resource = QdrantResource(endpoint="http://127.0.0.1:6333", api_key=API_KEY)
    manager = QdrantPySparkIOManager(qdrant=resource)
    for shown in (resource, manager):
        for text in (repr(shown), str(shown)):
            _assert_no_secret(text)


def test_dagster_metadata_and_logs_never_show_the_api_key(
    keyed_server: object, spark, collection_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    from dagster import asset, materialize

    from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
    from dagster_qdrant.dagster_io.resources import QdrantResource

    caplog.set_level(logging.DEBUG)

    @asset(name=collection_name)
    def documents():
        return spark.createDataFrame(
            [(index, [float(index), 1.0], f"doc {index}") for index in range(12)], "id long, vector array<float>, text string"
        )

    resource = QdrantResource(endpoint=keyed_server.url, api_key=API_KEY)  # type: ignore[attr-defined]
    result = materialize([documents], resources={"io_manager": QdrantPySparkIOManager(qdrant=resource)})
    assert result.success
    shown = []
    for event in result.all_events:
        shown.append(event.message or "")
        shown.append(repr(event.event_specific_data))
    for materialization in result.asset_materializations_for_node(collection_name):
        shown.extend(f"{key}={value!r}" for key, value in materialization.metadata.items())
    assert any("dagster/row_count" in text for text in shown), "the metadata was not captured"
    _assert_no_secret("\n".join(shown) + _log_text(caplog))


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured log record, except py4j's DEBUG wire trace of the commands sent to the JVM.

    py4j traces every command verbatim at DEBUG (data, options, anything), so a Spark data source option
    can only be kept out of it by not passing it; docs/reliability.md says so.
    """
    return "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("py4j")
    )
