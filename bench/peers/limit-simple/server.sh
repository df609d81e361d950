# The minimal responder with one recvfrom and one sendto per query (no batching).
PORT=5309
CHECK=none
HEALTH=no
server_setup() { build_responder; }
server_prepare() { :; }
server_cmd() { echo "$RESPONDER $PORT simple"; }
server_version() { echo "minimal responder (bench/responder/responder.c, cc -O2, recvfrom/sendto)"; }
