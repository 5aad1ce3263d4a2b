// Package loopback picks TCP ports on 127.0.0.1 for processes that must be
// told their port before they start: an etcd member whose peer URL is in
// every member's configuration, a bookie restarted on the same address by
// the fault harness, a sandbox started by a test.
//
// The usual trick (listen on port 0, close, hand the port out) races with
// every other listener on port 0: the kernel hands out ports from the
// ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default on
// Linux), so a fault proxy or a test server opening :0 in the gap can take
// the port first and the process fails with "address already in use".
// Ports picks below the ephemeral range instead, where nothing is given
// out implicitly, checks each port by binding it, and never hands the same
// port out twice in one process. Where no such range exists (a system
// whose ephemeral range starts low), it falls back to port 0.
//
// No on-disk or wire format.
package loopback
