// Package memkv is the in-memory backend of the kv seam: an MVCC map with
// one global revision, a bounded watch history, and leases that really
// expire. It reproduces the etcd semantics documented in package kv so that
// the metadata conformance suite passes on it unchanged.
//
// A Server is the "cluster"; each Client is one connection to it with its
// own Close (closing a client stops its watches but, as with etcd, leaves
// its leases to expire). Nothing is persisted.
//
// # Concurrency
//
// Every method is safe for concurrent use. The Server owns one goroutine
// (lease expiry) and each watch one goroutine (delivery); Server.Close and
// Client.Close stop them and wait. Lock order: Server.mu, then watcher.mu.
package memkv
