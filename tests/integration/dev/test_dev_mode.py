"""`braidflow dev` and `braidflow worker` as a user meets them: ready with commands that
work as shown, or stopped with one line and a non-zero exit, never a traceback.

Each test runs the real command as a subprocess (an embedded broker on a free port for
dev mode). A broker that refuses consumer groups for good is an embedded broker behind
`JoinRefusingProxy`: Tansu does not check Apache Kafka's session timeout limits.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from background_loop import BackgroundLoop
from confluent_kafka.admin import AdminClient, NewTopic
from dev_commands import (
    BARE_PATH,
    BRAIDFLOW,
    EXAMPLES,
    READY,
    Command,
    assert_one_line_failure,
    braidflow,
    listening,
)
from join_refusing_proxy import JoinRefusingProxy
from waiting import until
from workers import DEV_SPEED

from braidflow.connectors.broker import EmbeddedBroker, free_port


@pytest.fixture(scope="module")
def refusing_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JoinRefusingProxy]:
    """A broker behind a proxy that answers consumer group joins with error 26
    (INVALID_SESSION_TIMEOUT), as a default Apache Kafka answers one asking for 3 s."""
    loop = BackgroundLoop()
    proxy_port = free_port()
    log = Path(tmp_path_factory.mktemp("refusing-broker")) / "tansu.log"
    try:
        with (
            EmbeddedBroker(advertised_port=proxy_port, log=log) as broker,
            JoinRefusingProxy(loop, proxy_port, broker.port) as proxy,
        ):
            yield proxy
    finally:
        loop.close()


@pytest.fixture
def refusing_broker(refusing_proxy: JoinRefusingProxy) -> Iterator[str]:
    """host:port of a broker refusing every consumer group."""
    refusing_proxy.refuse = lambda group: True
    yield f"127.0.0.1:{refusing_proxy.port}"


def test_a_worker_whose_group_the_broker_refuses_stops_with_one_line_naming_the_setting(
    refusing_broker: str, tmp_path: Path
) -> None:
    command = Command(
        braidflow(
            "worker",
            "--broker",
            refusing_broker,
            "--data-dir",
            str(tmp_path / "data"),
            "--api-port",
            str(free_port()),
        ),
        tmp_path,
        env=DEV_SPEED,
    )
    try:
        assert_one_line_failure(
            command, "refused consumer group", "session timeout 3 s", "BRAIDFLOW_SESSION_TIMEOUT_S"
        )
    finally:
        command.stop()


def test_a_worker_whose_event_router_group_is_refused_stops_with_one_line(
    refusing_proxy: JoinRefusingProxy, tmp_path: Path
) -> None:
    # Faust's and the executor's groups join: the refusal reaches librdkafka's consumer only.
    # It joins once the events pattern matches a topic.
    refusing_proxy.refuse = lambda group: group.endswith("-router")
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{refusing_proxy.port}"})
    for created in admin.create_topics([NewTopic("events.refusal", 1, 1)]).values():
        created.result(timeout=10)
    command = Command(
        braidflow(
            "worker",
            "--broker",
            f"127.0.0.1:{refusing_proxy.port}",
            "--prefix",
            "refused",
            "--data-dir",
            str(tmp_path / "data"),
            "--api-port",
            str(free_port()),
        ),
        tmp_path,
        env=DEV_SPEED,
    )
    try:
        assert_one_line_failure(command, "refused consumer group 'refused-router'")
    finally:
        command.stop()


def test_dev_mode_on_a_broker_that_refuses_its_groups_stops_with_one_line(
    refusing_broker: str, tmp_path: Path
) -> None:
    command = Command(
        braidflow(
            "dev",
            "--broker",
            refusing_broker,
            "--examples",
            str(EXAMPLES),
            "--data-dir",
            str(tmp_path / "data"),
            "--api-port",
            str(free_port()),
            "--demo-port",
            str(free_port()),
        ),
        tmp_path,
    )
    try:
        # Dev settings on another broker ask for a session timeout Apache Kafka accepts.
        assert_one_line_failure(command, "refused consumer group", "session timeout 10 s")
    finally:
        command.stop()


def test_dev_mode_with_its_demo_port_taken_stops_with_one_line_naming_port_and_option(
    tmp_path: Path,
) -> None:
    demo_port = free_port()
    with listening(demo_port):
        command = Command(
            braidflow(
                "dev",
                "--examples",
                str(EXAMPLES),
                "--api-port",
                str(free_port()),
                "--demo-port",
                str(demo_port),
            ),
            tmp_path,
        )
        try:
            assert_one_line_failure(command, f"127.0.0.1:{demo_port}", "--demo-port")
        finally:
            command.stop()


def test_dev_mode_with_its_api_port_taken_stops_with_one_line_naming_port_and_option(
    tmp_path: Path,
) -> None:
    api_port = free_port()
    with listening(api_port):
        command = Command(
            braidflow(
                "dev",
                "--examples",
                str(EXAMPLES),
                "--api-port",
                str(api_port),
            ),
            tmp_path,
        )
        try:
            assert_one_line_failure(command, f"127.0.0.1:{api_port}", "--api-port")
        finally:
            command.stop()


def test_dev_mode_on_other_ports_says_so_and_its_banner_commands_work_as_shown(
    tmp_path: Path,
) -> None:
    api_port, demo_port = free_port(), free_port()
    with listening(9092):
        # Started as `make run` starts it: the virtualenv's script, the venv not on the PATH.
        dev = Command(
            [
                str(BRAIDFLOW),
                "dev",
                "--examples",
                str(EXAMPLES),
                "--api-port",
                str(api_port),
                "--demo-port",
                str(demo_port),
            ],
            tmp_path / "dev",
            env={"PATH": BARE_PATH},
        )
        try:
            dev.wait_for_output(READY, 90)
            assert "port 9092 is taken: the embedded broker listens on 127.0.0.1:" in dev.stdout
            # Authentication is on, with the owner key the banner shows.
            (key,) = [
                line.removeprefix("owner API key: ")
                for line in dev.stdout.splitlines()
                if line.startswith("owner API key: ")
            ]
            url = f"http://127.0.0.1:{api_port}/api/v1/workflows/fan-out"
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url)
            assert refused.value.code == 401
            # The examples call the demo services where they are.
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request) as r:
                definition = json.load(r)["definition"]
            assert f"http://127.0.0.1:{demo_port}" in definition
            assert ":8090" not in definition

            def run_shown(marker: str, execution_id: str = "") -> str:
                (shown,) = [line for line in dev.stdout.splitlines() if marker in line]
                shown = shown.replace("<execution_id>", execution_id)
                run = subprocess.run(
                    shlex.split(shown),
                    capture_output=True,
                    text=True,
                    timeout=90,
                    cwd=tmp_path,
                    # The same user's config home, where dev mode wrote its key: no --api-key.
                    env={
                        "PATH": BARE_PATH,
                        "HOME": str(tmp_path),
                        "XDG_CONFIG_HOME": str(tmp_path / "dev"),
                    },
                )
                assert run.returncode == 0, f"{shown}\n{run.stdout}\n{run.stderr}\n{dev.describe()}"
                return run.stdout

            assert "status: completed" in run_shown(" run fan-out ")

            # ticket-triage: the demo model answers, the owner approves, the sink keeps the mail.
            run_shown(" publish ticket.arrived ")
            pending = until(
                lambda: run_shown(" approvals --workflow ticket-triage").split(),
                "the ticket's approval",
            )
            run_shown(" approve <execution_id> ", pending[2])
            dev.wait_for_output("demo mail sink: kept a mail to ada@example.test", 30)
            with urllib.request.urlopen(f"http://127.0.0.1:{demo_port}/mail") as r:
                [mail] = json.load(r)["mails"]
            assert "demo model" in mail["text"]

            # Ctrl-C is a normal end.
            dev.process.send_signal(signal.SIGINT)
            assert dev.wait_exit(60) == 0, dev.describe()
        finally:
            dev.stop()
