-- CONTRACT §1 as one DuckDB query over the raw log files.
-- Parameters: $files (list of paths, lookback day first), $win_start / $win_stop (TIMESTAMP),
-- $min_gap, $timeout, $mult.
WITH raw AS (
    SELECT r.line, r.n
    FROM read_csv($files, columns = {'line': 'VARCHAR'}, delim = '\x01', header = false,
                  quote = '', escape = '', filename = true) WITH ORDINALITY AS r(line, filename, n)
),
m AS (
    SELECT n,
           regexp_extract(line,
               '^[ \t]*([0-9]{4}-[0-9]{2}-[0-9]{2})[ \t]+([0-9]{2}:[0-9]{2}:[0-9]{2})[ \t]+([0-9]{1,18})[ \t]+([A-Za-z]+)[ \t\r]*$',
               ['d', 'tm', 'uid', 'act']) AS x
    FROM raw
),
ev AS (
    SELECT n,
           CAST(x.uid AS BIGINT) AS userid,
           epoch(try_strptime(x.d || ' ' || x.tm, '%Y-%m-%d %H:%M:%S'))::BIGINT AS t,
           lower(x.act) AS action
    FROM m
    WHERE x.uid <> ''
      AND lower(x.act) IN ('login', 'logout', 'get', 'post')
      AND try_strptime(x.d || ' ' || x.tm, '%Y-%m-%d %H:%M:%S') IS NOT NULL
),
g AS (
    SELECT *, t - lag(t) OVER w AS gap, lag(action) OVER w AS prev_action
    FROM ev WINDOW w AS (PARTITION BY userid ORDER BY t, n)
),
b AS (
    SELECT *,
           sum(CASE WHEN action = 'login' THEN 1 ELSE 0 END) OVER w AS login_no,
           sum(CASE WHEN gap > $timeout OR prev_action = 'logout' THEN 1 ELSE 0 END) OVER w AS brk_no
    FROM g WINDOW w AS (PARTITION BY userid ORDER BY t, n ROWS UNBOUNDED PRECEDING)
),
e AS (
    SELECT *,
           login_no > 0 AND action <> 'login'
             AND brk_no = first_value(brk_no) OVER (PARTITION BY userid, login_no ORDER BY t, n) AS alive,
           t >= epoch($win_start) AND t < epoch($win_stop) AS in_win
    FROM b
),
sess AS (
    SELECT userid, login_no,
           sum(CASE WHEN alive AND in_win AND gap >= $min_gap THEN gap ELSE 0 END) AS secs,
           bool_or(alive AND action = 'post') AS marked,
           bool_or(in_win) AS present
    FROM e GROUP BY userid, login_no
)
SELECT userid,
       sum(CASE WHEN login_no = 0 THEN 0 WHEN marked THEN secs * $mult ELSE secs END)::BIGINT AS online_seconds,
       count(*) FILTER (WHERE login_no > 0 AND secs > 0) AS sessions
FROM sess
GROUP BY userid
HAVING bool_or(present)
ORDER BY userid
