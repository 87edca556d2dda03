# usage: pg.sh DB  -- runs hold-create pgbench against a kept DB and samples wait events
DB=$1
T=$(psql -h 127.0.0.1 -U postgres $DB -Atc "select id from tenants where name='bench'")
pgbench -n -M prepared -c 64 -j 2 -T 8 -D k=0 -D clients=64 -D tenant=$T -D owner=u -D seats=1 -D ttl=300 -D type=hold.created -D data='{"a":1}' -D deltas='{1}' -D pass_ppm=0 -f bench/sql/hold-create.sql postgres://postgres@127.0.0.1:5432/$DB > /tmp/pgb.out 2>&1 &
sleep 3
for i in 1 2 3; do psql -h 127.0.0.1 -U postgres $DB -Atc "select wait_event_type, wait_event, state, left(query, 60), count(*) from pg_stat_activity where datname='$DB' group by 1,2,3,4 order by 5 desc limit 8"; echo ---; sleep 1; done
wait
tail -8 /tmp/pgb.out
