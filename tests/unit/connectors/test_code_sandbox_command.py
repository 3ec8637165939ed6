"""The bwrap command and the rlimits a code node runs under, as plain data."""

from __future__ import annotations

from pathlib import Path

from braidflow.connectors import code
from braidflow.connectors.code import (
    FILE_BYTES,
    OPEN_FILES,
    PROCESSES,
    SANDBOX_USER,
    TMP_BYTES,
    Interpreter,
    rlimits,
    sandbox_command,
)
from braidflow.topology.kinds.code import limits_in_force

PYENV = Interpreter("/root/.pyenv/versions/3.11.7/bin/python3.11", "/root/.pyenv/versions/3.11.7")
SYSTEM = Interpreter("/usr/bin/python3.11", "/usr")
MERGED_USR = {"/bin": "usr/bin", "/lib": "usr/lib", "/lib64": "usr/lib64"}


def command(
    interpreter: Interpreter = SYSTEM, network: bool = False, as_root: bool = False
) -> list[str]:
    return sandbox_command("/usr/bin/bwrap", interpreter, network, as_root, MERGED_USR)


def pairs(argv: list[str], option: str) -> list[str]:
    """The argument after each `option`."""
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


def test_cpu_time_rounds_up_to_whole_seconds_with_a_hard_second_more() -> None:
    limits = limits_in_force({"cpu_ms": 1500, "memory_mb": 128})
    assert rlimits(limits) == {
        "RLIMIT_CPU": (2, 3),
        "RLIMIT_AS": (128 * 1024 * 1024, 128 * 1024 * 1024),
        "RLIMIT_NPROC": (PROCESSES, PROCESSES),
        "RLIMIT_FSIZE": (FILE_BYTES, FILE_BYTES),
        "RLIMIT_NOFILE": (OPEN_FILES, OPEN_FILES),
        "RLIMIT_CORE": (0, 0),
    }


def test_without_network_the_sandbox_has_a_network_namespace_of_its_own() -> None:
    argv = command()
    assert "--unshare-net" in argv
    assert "/etc/resolv.conf" not in argv
    assert {"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"} <= set(argv)


def test_with_network_it_shares_the_worker_s_and_sees_what_names_need() -> None:
    argv = command(network=True)
    assert "--unshare-net" not in argv
    assert "/etc/resolv.conf" in pairs(argv, "--ro-bind-try")


def test_only_usr_and_the_interpreter_are_bound_read_only_and_tmp_is_private() -> None:
    argv = command(PYENV)
    assert pairs(argv, "--ro-bind") == [
        "/usr",
        "/root/.pyenv/versions/3.11.7",
        str(Path(code.__file__).with_name("code_runner.py")),
    ]
    assert pairs(argv, "--symlink") == ["usr/bin", "usr/lib", "usr/lib64"]
    assert "--bind" not in argv
    assert pairs(argv, "--tmpfs") == ["/tmp"]
    assert pairs(argv, "--size") == [str(TMP_BYTES)]
    # The directories on the way to the interpreter are made reachable for the sandbox's user.
    assert pairs(argv, "--dir") == [
        "/etc",
        "/root",
        "/root/.pyenv",
        "/root/.pyenv/versions",
        "/run/braidflow",
    ]


def test_a_system_python_needs_no_bind_beyond_usr_and_split_usr_binds_lib_itself() -> None:
    argv = sandbox_command("bwrap", SYSTEM, False, False, {"/lib": None, "/lib64": None})
    assert pairs(argv, "--ro-bind")[:3] == ["/usr", "/lib", "/lib64"]
    assert pairs(argv, "--dir") == ["/etc", "/run/braidflow"]


def test_as_root_it_keeps_only_what_dropping_to_nobody_needs() -> None:
    argv = command(as_root=True)
    assert "--unshare-user" not in argv
    assert pairs(argv, "--cap-drop") == ["ALL"]
    assert pairs(argv, "--cap-add") == ["CAP_SETUID", "CAP_SETGID"]


def test_as_another_user_it_maps_that_user_to_nobody_and_forbids_more_namespaces() -> None:
    argv = command(as_root=False)
    assert "--unshare-user" in argv and "--disable-userns" in argv
    assert (pairs(argv, "--uid"), pairs(argv, "--gid")) == (
        [str(SANDBOX_USER[0])],
        [str(SANDBOX_USER[1])],
    )
    assert "--cap-add" not in argv


def test_the_interpreter_runs_isolated_with_a_clean_environment() -> None:
    argv = command()
    end = argv.index("--")
    assert "--clearenv" in argv[:end]
    assert argv[end + 1 :] == [
        "/usr/bin/python3.11",
        "-I",
        "-S",
        "-B",
        "/run/braidflow/code_runner.py",
    ]
