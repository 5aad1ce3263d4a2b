// Package kvtest checks that a kv.KV backend has etcd's semantics, as
// package kv documents them. memkv and etcdkv both run it; the metadata
// conformance suite then checks the typed store built on top.
package kvtest
