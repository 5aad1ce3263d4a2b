// Package dlog holds the types every dlog API shares: DLSN (a record's
// position), Record and ReadRecord, the error taxonomy (definite versus
// indeterminate failures, see IsDefinite) and name validation.
//
// The embedded core library (namespaces, writers, readers talking directly to
// etcd and the bookies) is package namespace; the client of the proxy service
// tier is package client. Both return these types and errors.
//
// # Text and binary forms
//
// A DLSN prints as "lssn:entry:slot" (e.g. "3:1042:7") and parses back with
// ParseDLSN; its binary form is 25 bytes: version 0x01, then lssn, entry id and
// slot id as big-endian int64, so that bytes sort like DLSNs.
package dlog
