#!/usr/bin/env bash
# Drives ironpool's Molten Iron listener with mi_client.py, a stdlib-only
# Python client written from the protocol doc, the way Molten Iron's stock
# client and its devstack CI hook use it: add nodes, allocate, get_field,
# set_field, status, release, the error cases, then delete_db. It builds
# ironpool, starts `ironpool serve --molteniron-listen` on free loopback
# ports with a temporary data dir, and stops it by PID. The last line is
# "N passed, N failed"; the exit status is non-zero if anything failed.
set -u
cd "$(dirname "$0")/../.."
HERE=test/molteniron
WORK=$(mktemp -d)
PIDS=()
PASSED=0
FAILED=0

cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

finish() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME ARGS...: start a server with its own data dir and a conf dir
# for the client (conf.yaml with serverIP/mi_port, as the stock client
# reads); MI_PORT is its Molten Iron port. Not run in $(...): the PID must
# be recorded in this shell so cleanup can stop the server.
start() {
	local name=$1
	shift
	local api mi
	api=$(free_port)
	mi=$(free_port)
	mkdir -p "$WORK/$name/conf"
	printf 'mi_port: %s\nserverIP: 127.0.0.1\ntimeout: 5\nretry: 5\nmaxTime: 6000\nlogdir: "/tmp"\nmaxLogDays: 15\nsqlUser: "root"\nsqlPass: "password"\n' \
		"$mi" >"$WORK/$name/conf/conf.yaml"
	"$WORK/ironpool" serve --data-dir "$WORK/$name/data" --listen "127.0.0.1:$api" \
		--molteniron-listen "127.0.0.1:$mi" "$@" >"$WORK/$name/server.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do
		if python3 -c "import socket; socket.create_connection(('127.0.0.1', $mi), 0.2)" 2>/dev/null; then
			MI_PORT=$mi
			return 0
		fi
		sleep 0.1
	done
	cat "$WORK/$name/server.log" >&2
	return 1
}

# check NAME WANT_EXIT PYEXPR -- CLIENT_ARGS...: run the client with the
# current conf dir; pass when it exits WANT_EXIT and PYEXPR is true, with
# `out` its stdout and `r` that parsed as JSON (None if it is not JSON).
check() {
	local name=$1 want=$2 expr=$3
	shift 4
	local got
	python3 "$HERE/mi_client.py" -c "$CONF" "$@" >"$WORK/out" 2>"$WORK/err"
	got=$?
	if [ "$got" = "$want" ] && python3 - "$WORK/out" "$expr" <<'EOF'
import json, sys
out = open(sys.argv[1]).read()
try:
    r = json.loads(out)
except ValueError:
    r = None
def nodes(r):
    return [r["nodes"][k] for k in sorted(r["nodes"], key=lambda k: int(k[5:]))]
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
	then
		PASSED=$((PASSED + 1))
		echo "ok   $name"
	else
		FAILED=$((FAILED + 1))
		echo "FAIL $name: exit $got (want $want)"
		sed 's/^/     stdout: /' "$WORK/out" | head -20
		sed 's/^/     stderr: /' "$WORK/err" | head -5
	fi
}

if ! go build -o "$WORK/ironpool" ./cmd/ironpool; then
	FAILED=1
	finish
fi

start admin --molteniron-role admin --molteniron-allow-delete-db || { FAILED=1; finish; }
MI=$MI_PORT
CONF=$WORK/admin/conf

OK='r == {"status": 200}'
NODE_KEYS='["id", "name", "ipmi_ip", "blob", "status", "provisioned", "timestamp", "node_pool", "allocation_pool"]'
for i in 1 2 3 4; do
	check "add_baremetal node$i" 0 "$OK" -- add_baremetal "node$i" "10.0.0.$i" admin "pw$i" "10.1.$i.1,10.1.$i.2" \
		"52:54:00:00:00:0$i" x86_64 8 16384 100
done
check "add_baremetal duplicate" 144 'r == {"status": 400, "message": "Node already exists"}' -- \
	add_baremetal node1 10.0.0.9 admin pw 10.1.9.1 52:54:00:00:00:09 x86_64 8 16384 100
check "add_json_blob in pool ci" 0 "$OK" -- add_json_blob node5 10.0.0.5 10.1.5.1 \
	'{"ipmi_user": "u5", "ipmi_password": "p5", "port_hwaddr": "52:54:00:00:00:05", "cpu_arch": "x86_64", "cpus": 4, "ram_mb": 8192, "disk_gb": 50}' ci
check "add_keyvalue_pairs" 0 "$OK" -- add_keyvalue_pairs node6 10.0.0.6 10.1.6.1 'ipmi_user="user"' ipmi_password=p6 cpus=64 rack=r1
check "add_json_blob bad blob" 144 'r["message"].startswith("Expecting value")' -- add_json_blob node7 10.0.0.7 10.1.7.1 'not json'

check "allocate 2" 0 "r['status'] == 200 and len(r['nodes']) == 2 and all(list(n) == $NODE_KEYS and n['status'] == 'dirty' and n['provisioned'] == 'job1' and isinstance(n['blob'], str) and json.loads(n['blob'])['cpus'] == 8 and n['allocation_pool'].count(',') == 1 for n in nodes(r)) and all(k == 'node_%d' % n['id'] for k, n in r['nodes'].items())" -- \
	allocate job1 2
check "allocate too many" 148 'r == {"status": 404, "message": "Not enough available nodes found. Found 3, requested 10"}' -- allocate job2 10
check "allocate from pool ci" 0 "[n['name'] for n in nodes(r)] == ['node5'] and nodes(r)[0]['node_pool'] == 'ci'" -- allocate job3 1 ci
check "allocate Default means any pool" 148 'r["message"] == "Not enough available nodes found. Found 3, requested 4"' -- allocate job4 4 Default

check "get_field password" 0 "[x['field'] for x in r['result']] == ['pw%d' % x['id'] for x in r['result']] and [x['id'] for x in r['result']] == sorted(x['id'] for x in r['result'])" -- \
	get_field job1 ipmi_password
check "get_field -o result" 0 "out.startswith(\"[{'id': \") and \"'field': 8}]\" in out" -- -o result get_field job1 cpus
check "get_field unknown field" 144 'r == {"status": 400, "message": "field nope does not exist"}' -- get_field job1 nope
check "get_field unknown owner" 148 'r == {"status": 404, "message": "nobody does not own any nodes"}' -- get_field nobody cpus

check "set_field int" 0 "$OK" -- set_field 1 cpus 32 int
check "set_field string" 0 "$OK" -- set_field 6 rack r2 string
check "status csv after set_field" 0 "\"'cpus': 32}\" in r['result'] and \"'rack': 'r2'\" in r['result']" -- status -t csv
check "set_field unknown node" 148 'r == {"status": 404, "message": "Node with id of 99 does not exist!"}' -- set_field 99 cpus 1 int
check "set_field unknown key" 144 'r == {"status": 400, "message": "field nokey does not exist"}' -- set_field 1 nokey 1 string
check "set_field bad type" 144 'r == {"status": 400, "message": "Python type of float is not supported!"}' -- set_field 1 cpus 1 float
check "set_field bad int" 144 "r == {'status': 400, 'message': \"invalid literal for int() with base 10: 'x'\"}" -- set_field 1 cpus x int

check "status csv" 0 "len(r['result'].splitlines()) == 6 and all(l.endswith(',') for l in r['result'].splitlines()) and ',dirty,job1,' in r['result'] and ',ready,None,,default,' in r['result']" -- \
	status -t csv
check "status human" 0 "r['result'].splitlines()[1].startswith('+ id   + name') and len(r['result'].splitlines()) == 10" -- status
check "status_baremetal csv" 0 "'blob missing baremetal fields' in r['result'] and '1,node1,10.0.0.1,admin,pw1,52:54:00:00:00:01,x86_64,32,16384,100,dirty,job1,' in r['result']" -- \
	status_baremetal -t csv
check "status bad type" 144 'r == {"status": 400, "message": "Unknown --type=xml"}' -- status -t xml

check "raw: unknown method is a 400 reply" 0 "out.startswith('400 ') and json.loads(out[4:])['status'] == 400" -- raw '{"method": "frobnicate"}'
check "raw: missing key" 0 "out.startswith('400 ') and json.loads(out[4:]) == {'status': 400, 'message': \"'owner_name'\"}" -- raw '{"method": "release"}'
check "raw: not JSON" 0 "out.startswith('400 ') and 'Expecting value' in out" -- raw 'garbage'

# An idle client (connected, silent) must not block the next one.
python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $MI))
time.sleep(30)
" &
IDLE=$!
PIDS+=("$IDLE")
sleep 0.3
start_ts=$(date +%s%N)
check "a request while another client idles" 0 "r['status'] == 200" -- status -t csv
elapsed_ms=$((($(date +%s%N) - start_ts) / 1000000))
if [ "$elapsed_ms" -lt 3000 ]; then
	PASSED=$((PASSED + 1))
	echo "ok   idle client blocks nobody (${elapsed_ms} ms)"
else
	FAILED=$((FAILED + 1))
	echo "FAIL idle client blocks nobody: ${elapsed_ms} ms"
fi
kill "$IDLE" 2>/dev/null

check "release" 0 "$OK" -- release job1
check "release again" 144 'r == {"status": 400, "message": "No nodes are owned by job1"}' -- release job1

# The devstack CI hook: allocate, write hardware_info and localrc.
check "CI hook allocates" 0 "True" -- hook_ipmiblob cihook 2 --hardware-info "$WORK/hardware_info" --localrc "$WORK/localrc"
check "CI hook hardware_info" 0 "len(open('$WORK/hardware_info').read().splitlines()) == 2 and all(len(l.split()) == 4 and l.split()[0].startswith('10.0.0.') for l in open('$WORK/hardware_info').read().splitlines())" -- status -t csv
check "CI hook localrc" 0 "'IRONIC_HW_ARCH=x86_64' in open('$WORK/localrc').read() and 'ALLOCATION_POOL=\"start=10.1.' in open('$WORK/localrc').read() and '--allocation-pool' in open('$WORK/localrc').read()" -- status -t csv
check "CI hook release" 0 "$OK" -- release cihook

check "delete_db" 0 "$OK" -- delete_db
check "delete_db keeps allocated nodes" 0 "r['result'].count('\n') == 1 and ',node5,' in r['result']" -- status -t csv
check "release after delete_db" 0 "$OK" -- release job3

# The default listener acts as role user, for the owners named (required):
# it allocates but cannot add or wipe.
start user --molteniron-owner job || { FAILED=$((FAILED + 1)); finish; }
CONF=$WORK/user/conf
check "user listener refuses add" 147 'r["status"] == 403' -- \
	add_baremetal n1 10.0.0.1 admin pw 10.1.0.1 52:54:00:00:00:01 x86_64 8 16384 100
check "user listener refuses delete_db" 147 'r["status"] == 403 and "--molteniron-allow-delete-db" in r["message"]' -- delete_db
check "user listener allocates (nothing there)" 148 'r["status"] == 404' -- allocate job 1

finish
