"""What the tests share that is not a fixture (fixtures live in the conftest.py files only).

- `paths`: where the project is.
- `stacks`: throwaway stacks' settings, docker names, what a torn-down stack must not leave.
- `db`: one statement as the app's role, the state file's database URL, libpq URLs.
- `output`: reading a command's stdout and stderr (steps, the one-line error, branch order).
- `project`: a copy of the project, its state file and its `up --plan`.
- `invoke`: `invoke ...` in a subprocess (on `ops.invoke_cli`), in the foreground or background.
- `procs`: the processes of a project copy (uvicorn, postmasters), pids, polling.
- `dev`: driving `invoke dev` and reading what it serves.
- `sources`: code the e2e tests write into a project copy (a worker, its declaration, a migration).
- `collect`: pytest's collected ids and their JUnit names.
- `app`: the FastAPI app in-process (TestClient) and its search results.
- `replication`, `pg_node`: a primary with streaming standbys from the embedded wheel.
- `tls_pki`, `tls_relay`, `debian_postgres`: real TLS to PostgreSQL.
- `warm_server`: a tiny app for the warm server, and a running warm server's events and log.
"""
