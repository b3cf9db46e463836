# Sourced by the test command: starts Debian's PostgreSQL cluster and makes the `rg` role.
version=$(ls /etc/postgresql | sort -n | tail -1)
pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main status >/dev/null
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -h 127.0.0.1" && break
  sleep 1
done
su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='rg'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"create user rg password 'rg' createdb\""
su postgres -c "psql -qtAc \"select 1 from pg_database where datname='rg'\"" | grep -q 1 \
  || su postgres -c "createdb -O rg rg"
