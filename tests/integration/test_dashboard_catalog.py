"""Category names for the dashboard: the catalog's ``vsort`` (real MariaDB) into ``catalog/categories.json``."""

from __future__ import annotations

from include import dashboard as dash
from include.storage import DataRoot
from tests.support.plays import mysql_conn, mysql_hook

HOSTILE = "<script>alert('x')</script>"


def test_names_are_captured_when_the_catalog_has_them(mysql_db, tmp_path):
    root = DataRoot(str(tmp_path))
    cur = mysql_conn(mysql_db).cursor()
    cur.execute("CREATE TABLE vsort (id INT PRIMARY KEY, kid VARCHAR(64) NULL, name VARCHAR(300) NULL)")
    cur.executemany("INSERT INTO vsort VALUES (%s, %s, %s)",
                    [(1, "5", "Music"), (2, "13", HOSTILE), (3, None, "orphan"), (4, "21", None), (5, "8", "  "),
                     (6, "news", "x" * 300), (7, "5", "Later duplicate")])
    out = dash.capture_categories(root, mysql_hook(mysql_db))
    assert out["column_found"] and out["rows"] == 7 and out["named"] == 3 and not out["truncated"]
    assert dash.category_names(root) == {"5": "Music", "13": HOSTILE, "news": "x" * dash.MAX_NAME}


def test_a_catalog_without_names_leaves_the_ids(mysql_db, tmp_path):
    root = DataRoot(str(tmp_path))
    cur = mysql_conn(mysql_db).cursor()
    cur.execute("CREATE TABLE vsort (id INT PRIMARY KEY, kid VARCHAR(64) NULL)")
    cur.execute("INSERT INTO vsort VALUES (1, 'music')")
    # a hostile column setting is only ever compared with the result's column names, never put in SQL
    out = dash.capture_categories(root, mysql_hook(mysql_db), column="kid`; DROP TABLE vsort; --")
    assert out["column_found"] is False and out["named"] == 0
    assert dash.category_names(root) == {}
    cur.execute("SELECT COUNT(*) FROM vsort")
    assert cur.fetchone()[0] == 1
