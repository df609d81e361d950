#!/usr/bin/env bash
# gdnsd extmon check: up iff GET / on HOST:PORT (loopback only) answers 200 within 1 s.
host=$1 port=$2
case $host in 127.*) ;; *) exit 1 ;; esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET / HTTP/1.0\r\nHost: gateway\r\n\r\n' >&3
IFS= read -r -t 1 status <&3 || exit 1
[[ $status == *" 200 "* ]]
