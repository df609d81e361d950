# The minimal responder (bench/responder/responder.c), batching with recvmmsg/sendmmsg:
# a fixed answer to every query, no lookup at all. The floor of a server's cost here.
PORT=5300
CHECK=none
HEALTH=no
server_setup() { build_responder; }
server_prepare() { :; }
server_cmd() { echo "$RESPONDER $PORT mmsg"; }
server_version() { echo "minimal responder (bench/responder/responder.c, cc -O2, recvmmsg/sendmmsg)"; }
