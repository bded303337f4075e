"""The disk's raw SQLite figure: single-row INSERT transactions per second on a WAL database
with synchronous=FULL (a fsync per commit), one connection, for a few seconds."""
import os
import sqlite3
import sys
import time

path = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(path + suffix):
        os.remove(path + suffix)
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
n = 0
start = time.perf_counter()
while time.perf_counter() - start < seconds:
    db.execute("BEGIN")
    db.execute("INSERT INTO t (body) VALUES (?)", ("order %d" % n,))
    db.execute("COMMIT")
    n += 1
elapsed = time.perf_counter() - start
print("%.0f" % (n / elapsed))
