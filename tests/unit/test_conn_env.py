"""``include.conn_env``: connections read from the environment without Airflow, held to Airflow's own results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from airflow.sdk.definitions.connection import Connection
from airflow.secrets import BaseSecretsBackend
from hypothesis import example, given, settings
from hypothesis import strategies as st

from include import conn_env
from include import settings as cfg
from tests.conftest import ROOT, TEST_REDIS_DB

FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra")
URI_TEXT = st.text(alphabet="ab1:/@%?&=[]{}\"_-.#+ é\x00", max_size=40)


def _airflow(value: str):
    """What Airflow's environment backend makes of ``value`` (its own dispatch, SDK ``Connection``); ``None``
    where it raises."""
    try:
        return BaseSecretsBackend._deserialize_connection_value(Connection, "c", value)
    except Exception:
        return None


def _extra_is_an_object(conn) -> bool:
    try:
        return not conn.extra or isinstance(json.loads(conn.extra), dict)
    except ValueError:
        return False


def _same_as_airflow(value: str, must_decide: bool) -> None:
    """Where this module decides, Airflow decides the same; it leaves to Airflow only what Airflow rejects,
    extras that are not a JSON object, and (``must_decide`` False) values of other types than Airflow's."""
    ours, theirs = conn_env.parse("c", value), _airflow(value)
    if ours is None:
        assert not must_decide or theirs is None or not _extra_is_an_object(theirs), value
        return
    assert theirs is not None, value
    assert [getattr(ours, f) for f in FIELDS] == [getattr(theirs, f) for f in FIELDS], value


@settings(max_examples=400, deadline=None)
@given(scheme=st.sampled_from(["redis", "mysql", "postgresql", "my-sql", "aws", "http"]), rest=URI_TEXT)
@example(scheme="redis", rest="127.0.0.1:6391/8")
@example(scheme="mysql", rest="vi%40deo:p%3Aw@db.example:3306/vid%2Feo?charset=utf8&x=")
@example(scheme="http", rest="https://host.example:443/path")
@example(scheme="http", rest="https://us:er@host")
@example(scheme="redis", rest="h:99999/0")
@example(scheme="redis", rest="[::1]:6379/2?__extra__=%7B%22db%22%3A+3%7D")
@example(scheme="redis", rest="[::1/2")
def test_a_uri_reads_as_airflow_reads_it(scheme, rest):
    _same_as_airflow(f"{scheme}://{rest}", must_decide=True)


PLAIN = st.one_of(st.none(), st.text(max_size=12))
ODD = st.one_of(st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2),
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.booleans())


@settings(max_examples=400, deadline=None)
@given(fields=st.dictionaries(st.sampled_from([*FIELDS, "other"]), st.one_of(PLAIN, ODD), max_size=6))
@example(fields={"conn_type": "postgresql", "host": "h", "port": "5432", "extra": {"db": 2}})
@example(fields={"conn_type": "redis", "port": "six"})
@example(fields={"conn_type": "redis", "extra": "[1, 2]"})
@example(fields={"port": float("inf")})
@example(fields={"port": 1e300, "host": "h"})
def test_a_json_connection_reads_as_airflow_reads_it(fields):
    plain = set(fields) <= set(FIELDS) and all(
        v is None or isinstance(v, str) or (k == "port" and isinstance(v, int)) or (k == "extra" and isinstance(v, dict))
        for k, v in fields.items())
    _same_as_airflow(json.dumps(fields), must_decide=plain)


def test_json_nested_past_the_recursion_limit_is_left_to_airflow():
    deep = "[" * 100_000 + "]" * 100_000
    assert conn_env.parse("c", f'{{"conn_type": "redis", "extra": {deep}}}') is None
    _same_as_airflow(f'{{"conn_type": "redis", "extra": {deep}}}', must_decide=True)


def test_applies_only_where_airflow_would_read_the_environment_alone(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in [k for k in os.environ if "SECRETS" in k or k in ("_AIRFLOW_PROCESS_CONTEXT", "AIRFLOW_CONFIG")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert conn_env.applies(os.environ)  # no airflow.cfg at all
    (tmp_path / "airflow.cfg").write_text("[secrets]\nbackend =\n[core]\nexecutor = CeleryExecutor\n")
    assert conn_env.applies(os.environ)
    for text in ("[secrets]\nbackend = my.Backend\n", "[workers]\nsecrets_backend = my.Backend\n",
                 "[secrets]\nbackend_cmd = echo x\n", "[secrets\nbackend"):
        (tmp_path / "airflow.cfg").write_text(text)
        assert not conn_env.applies(os.environ), text
    (tmp_path / "airflow.cfg").unlink()
    for name, value in (("AIRFLOW__SECRETS__BACKEND", "my.Backend"), ("AIRFLOW__WORKERS__SECRETS_BACKEND_CMD", "x"),
                        ("_AIRFLOW_PROCESS_CONTEXT", "server")):
        monkeypatch.setenv(name, value)
        assert not conn_env.applies(os.environ), name
        monkeypatch.delenv(name)
    monkeypatch.setitem(sys.modules, "airflow", object())
    assert not conn_env.applies(os.environ)


def test_the_clients_are_the_ones_the_hooks_build(monkeypatch):
    """Airflow is imported here, so the settings take the hooks' way; the same connection read here gives
    the same Redis connection arguments and the same MySQLdb configuration."""
    from airflow.providers.redis.hooks.redis import RedisHook

    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_REDIS", "redis://us%40er:p%40ss@127.0.0.1:6391/4")
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_MYSQL", "mysql://vi:d%3Aeo@db.example:3307/vid%20eo?read_timeout=9")
    cosmetic = {"lib_name", "lib_version", "driver_info"}

    def kwargs(client):  # every argument by value, objects (registries, handlers) by their type
        return {k: v if isinstance(v, str | int | float | None) else type(v)
                for k, v in client.connection_pool.connection_kwargs.items() if k not in cosmetic}

    ours = conn_env.parse(cfg.REDIS_CONN_ID, os.environ["AIRFLOW_CONN_VIDEO_REDIS"])
    assert kwargs(conn_env.redis_client(ours)) == kwargs(RedisHook(redis_conn_id=cfg.REDIS_CONN_ID).get_conn())
    hook = cfg.mysql_hook()
    theirs = hook._get_conn_config_mysql_client(hook.get_connection(cfg.MYSQL_CONN_ID))
    mine = conn_env.parse(cfg.MYSQL_CONN_ID, os.environ["AIRFLOW_CONN_VIDEO_MYSQL"])
    assert cfg._with_timeouts(conn_env.mysql_config(mine), mine.extra_dejson, "connect_timeout") == theirs
    assert theirs["read_timeout"] == 9 and theirs["passwd"] == "d:eo" and theirs["db"] == "vid eo"


PROBE = """
import json, sys
from include import settings
out = {"ping": settings.redis_client().ping(),
       "rows": [list(r) for r in settings.mysql_hook().get_records("SELECT %s + 1", parameters=[41])],
       "mongo": settings.mongo_db(), "mongo_defined": settings.has_connection("video_mongo")}
out["airflow"] = sorted(m for m in sys.modules if m.split(".")[0] == "airflow")
print(json.dumps(out))
"""


def _run(args: list[str], **env) -> subprocess.CompletedProcess:
    """``python args`` with this environment less its ``AIRFLOW_CONN_*``, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base.update(PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", **env)
    return subprocess.run([sys.executable, *args], env=base, capture_output=True, text=True, timeout=120)


def _probe(**env) -> subprocess.CompletedProcess:
    return _run(["-c", PROBE], **env)


def test_the_cli_reaches_redis_and_mysql_without_importing_airflow(mysql_db):
    redis_port, mysql_port = os.environ.get("VIDEO_REDIS_PORT", "6379"), os.environ.get("VIDEO_MYSQL_PORT", "3306")
    env = {"AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:{redis_port}/{TEST_REDIS_DB}",
           "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@127.0.0.1:{mysql_port}/{mysql_db}"}
    out = _probe(**env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == {"ping": True, "rows": [[42]], "mongo": None, "mongo_defined": False,
                                      "airflow": []}
    # a secrets backend could define video_mongo elsewhere: Airflow is asked (and imported)
    out = _probe(**env, AIRFLOW__SECRETS__BACKEND="airflow.secrets.environment_variables.EnvironmentVariablesBackend")
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])  # the hook logs its statement on stdout
    assert got["rows"] == [[42]] and got["mongo_defined"] is False and "airflow.sdk" in got["airflow"]


@pytest.mark.parametrize("value, says", [
    (None, "connection video_redis is not defined (AIRFLOW_CONN_VIDEO_REDIS is not set"),
    ("redis://127.0.0.1:99999/0", "connection video_redis: AIRFLOW_CONN_VIDEO_REDIS is set but is not a valid"),
    ("redis://127.0.0.1:6379/0?db=x", "connection video_redis: db 'x' is not a database number"),
])
def test_a_missing_or_malformed_connection_is_one_line_naming_it(value, says, tmp_path):
    out = _run(["-m", "include.cli", "plays", "--date", "2014-01-07", "--data-root", str(tmp_path)],
               **({} if value is None else {"AIRFLOW_CONN_VIDEO_REDIS": value}))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1, out.stderr[-2000:]
    assert lines[0].startswith("video-analytics plays: error: ") and says in lines[0], lines


def test_outside_a_task_airflow_reads_connections_from_the_environment_alone(tmp_path):
    """What ``conn_env.applies`` rests on: with no secrets backend configured and no process context, the
    installed Airflow's lookup outside a task has the environment variables backend and nothing else (no
    metadata DB); a newer Airflow that adds a source fails here."""
    code = ("from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded\n"
            "print([type(b).__name__ for b in ensure_secrets_backend_loaded()])")
    env = {k: v for k, v in os.environ.items() if "SECRETS" not in k and k not in ("_AIRFLOW_PROCESS_CONTEXT",
                                                                                   "AIRFLOW_CONFIG")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    assert conn_env.applies({"AIRFLOW_HOME": str(tmp_path)}) is False  # this process has Airflow imported
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "['EnvironmentVariablesBackend']"
